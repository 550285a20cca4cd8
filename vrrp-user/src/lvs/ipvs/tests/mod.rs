//! Tests of the IPVS seam. The golden byte arrays assume a little-endian host (native-order
//! u16/u32 attributes), as every machine keepxdp runs on is.
mod decode;
mod golden_dest;
mod golden_service;
mod import;
mod socket;
