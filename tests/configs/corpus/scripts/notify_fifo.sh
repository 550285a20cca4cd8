#!/bin/sh
# corpus fixture: does nothing
exit 0
