//! The minimal reader: from each `vrrp_instance`, what the VRRP guard needs. Other keywords
//! and blocks are stepped over (the full parser, a later slice, judges them).
use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{ConfigError, Token, tokenize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Family {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "ipv6")]
    Ipv6,
}

impl Family {
    pub fn of(address: &IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

/// One `vrrp_instance` as the guard sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceSpec {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// keepalived's rule: IPv6 with `native_ipv6`, else the family of the first virtual
    /// address, else of `unicast_src_ip` / the first `unicast_peer`, else IPv4.
    pub family: Family,
    /// Empty means multicast; otherwise adverts are accepted only from these sources.
    pub unicast_peers: Vec<IpAddr>,
    pub line: usize,
}

pub fn read_instances(path: &Path) -> Result<Vec<InstanceSpec>, ConfigError> {
    let source = fs::read_to_string(path).map_err(|error| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the file: {error}"),
    })?;
    read_instances_from_str(path, &source)
}

pub fn read_instances_from_str(path: &Path, source: &str) -> Result<Vec<InstanceSpec>, ConfigError> {
    let tokens = tokenize(path, source)?;
    let reader = Reader { file: path.to_path_buf(), tokens: &tokens };
    let mut instances: Vec<InstanceSpec> = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let token = &tokens[at];
        if token.text == "include" && !token.quoted {
            return Err(reader.error(token, "`include` is not read by this version of keepxdp yet; inline the included file"));
        }
        if token.text == "vrrp_instance" && !token.quoted {
            let (instance, next) = reader.instance(at)?;
            if let Some(clash) = instances.iter().find(|other| {
                other.interface == instance.interface
                    && other.vrid == instance.vrid
                    && other.family == instance.family
            }) {
                return Err(reader.error(
                    &tokens[at + 1],
                    &format!(
                        "virtual_router_id {} on {} is already used by vrrp_instance {} (line {})",
                        instance.vrid, instance.interface, clash.name, clash.line
                    ),
                ));
            }
            instances.push(instance);
            at = next;
        } else {
            at = reader.skip_statement(at)?;
        }
    }
    Ok(instances)
}

struct Reader<'a> {
    file: PathBuf,
    tokens: &'a [Token],
}

impl Reader<'_> {
    fn error(&self, token: &Token, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: token.line,
            column: token.column,
            message: message.to_string(),
        }
    }

    fn end_error(&self, message: &str) -> ConfigError {
        let last = self.tokens.last();
        ConfigError {
            file: self.file.clone(),
            line: last.map_or(1, |t| t.line),
            column: last.map_or(1, |t| t.column + t.text.len()),
            message: message.to_string(),
        }
    }

    /// Index of the `{` opening a block for the keyword at `at`: on the keyword's line, or
    /// standing alone as the next token.
    fn block_open(&self, at: usize) -> Option<usize> {
        let line = self.tokens[at].line;
        let mut index = at + 1;
        while index < self.tokens.len() && self.tokens[index].line == line {
            if self.tokens[index].is_open() {
                return Some(index);
            }
            index += 1;
        }
        self.tokens.get(index).filter(|t| t.is_open()).map(|_| index)
    }

    /// Index just past the `}` matching the `{` at `open`.
    fn block_end(&self, open: usize) -> Result<usize, ConfigError> {
        let mut depth = 0usize;
        for (index, token) in self.tokens.iter().enumerate().skip(open) {
            if token.is_open() {
                depth += 1;
            } else if token.is_close() {
                depth -= 1;
                if depth == 0 {
                    return Ok(index + 1);
                }
            }
        }
        Err(self.error(&self.tokens[open], "this `{` is never closed"))
    }

    /// Steps over one statement: the keyword's line, and its block if it opens one.
    fn skip_statement(&self, at: usize) -> Result<usize, ConfigError> {
        if self.tokens[at].is_close() {
            return Err(self.error(&self.tokens[at], "unexpected `}` with no open block"));
        }
        if let Some(open) = self.block_open(at) {
            return self.block_end(open);
        }
        let line = self.tokens[at].line;
        let mut index = at + 1;
        while index < self.tokens.len() && self.tokens[index].line == line && !self.tokens[index].is_close() {
            index += 1;
        }
        Ok(index)
    }

    /// The value tokens after a keyword on its line.
    fn values(&self, at: usize) -> Vec<&Token> {
        let line = self.tokens[at].line;
        self.tokens[at + 1..]
            .iter()
            .take_while(|t| t.line == line && !t.is_open() && !t.is_close())
            .collect()
    }

    /// Lines of a block's body: the tokens of each line between `{` and `}`.
    fn block_lines(&self, open: usize, end: usize) -> Vec<Vec<&Token>> {
        let mut lines: Vec<Vec<&Token>> = Vec::new();
        for token in &self.tokens[open + 1..end - 1] {
            match lines.last_mut() {
                Some(current) if current[0].line == token.line => current.push(token),
                _ => lines.push(vec![token]),
            }
        }
        lines
    }

    fn address(&self, token: &Token) -> Result<IpAddr, ConfigError> {
        let text = token.text.split('/').next().unwrap_or_default();
        text.parse()
            .map_err(|_| self.error(token, &format!("`{}` is not an IP address", token.text)))
    }

    fn instance(&self, at: usize) -> Result<(InstanceSpec, usize), ConfigError> {
        let keyword = &self.tokens[at];
        let name = self
            .tokens
            .get(at + 1)
            .filter(|t| !t.is_open() && t.line == keyword.line)
            .ok_or_else(|| self.error(keyword, "vrrp_instance needs a name"))?;
        let open = self
            .block_open(at + 1)
            .ok_or_else(|| self.error(name, &format!("vrrp_instance {} needs a `{{` block", name.text)))?;
        let end = self.block_end(open)?;

        let mut interface = None;
        let mut vrid = None;
        let mut native_ipv6 = false;
        let mut first_vip = None;
        let mut unicast_src = None;
        let mut unicast_peers = Vec::new();
        let mut index = open + 1;
        while index < end - 1 {
            let token = &self.tokens[index];
            let values = self.values(index);
            match token.text.as_str() {
                "interface" => {
                    let value = values.first().ok_or_else(|| self.error(token, "interface needs a name"))?;
                    interface = Some(value.text.clone());
                }
                "virtual_router_id" => {
                    let value = values.first().ok_or_else(|| self.error(token, "virtual_router_id needs a number"))?;
                    let number = value.text.parse::<u8>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        self.error(value, &format!("virtual_router_id `{}` is not in 1..255", value.text))
                    })?;
                    vrid = Some(number);
                }
                "native_ipv6" => native_ipv6 = true,
                "unicast_src_ip" => {
                    let value = values.first().ok_or_else(|| self.error(token, "unicast_src_ip needs an address"))?;
                    unicast_src = Some(self.address(value)?);
                }
                "virtual_ipaddress" | "unicast_peer" => {
                    if let Some(block) = self.block_open(index) {
                        let block_end = self.block_end(block)?;
                        for line in self.block_lines(block, block_end) {
                            let address = self.address(line[0])?;
                            if token.text == "unicast_peer" {
                                unicast_peers.push((address, line[0]));
                            } else if first_vip.is_none() {
                                first_vip = Some(address);
                            }
                        }
                        index = block_end;
                        continue;
                    }
                }
                _ => {}
            }
            index = self.skip_statement(index)?;
        }
        if index != end - 1 {
            return Err(self.end_error("unbalanced braces in vrrp_instance"));
        }

        let interface = interface
            .ok_or_else(|| self.error(name, &format!("vrrp_instance {} has no `interface`", name.text)))?;
        let vrid = vrid.ok_or_else(|| {
            self.error(name, &format!("vrrp_instance {} has no `virtual_router_id`", name.text))
        })?;
        let family = if native_ipv6 {
            Family::Ipv6
        } else {
            first_vip
                .or(unicast_src)
                .or(unicast_peers.first().map(|(a, _)| *a))
                .map_or(Family::Ipv4, |a| Family::of(&a))
        };
        for (address, token) in &unicast_peers {
            if Family::of(address) != family {
                return Err(self.error(
                    token,
                    &format!("unicast_peer {address} is not of the instance's address family"),
                ));
            }
        }
        let spec = InstanceSpec {
            name: name.text.clone(),
            interface,
            vrid,
            family,
            unicast_peers: unicast_peers.into_iter().map(|(a, _)| a).collect(),
            line: keyword.line,
        };
        Ok((spec, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str) -> Result<Vec<InstanceSpec>, ConfigError> {
        read_instances_from_str(Path::new("keepalived.conf"), source)
    }

    #[test]
    fn reads_interface_vrid_and_multicast_from_a_plain_instance() {
        let got = read(
            "global_defs {\n  router_id LVS_1\n}\nvrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  authentication {\n    auth_type PASS\n    auth_pass 1111\n  }\n  virtual_ipaddress {\n    192.168.200.16/24 dev eth0\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "VI_1");
        assert_eq!(got[0].interface, "eth0");
        assert_eq!(got[0].vrid, 51);
        assert_eq!(got[0].family, Family::Ipv4);
        assert!(got[0].unicast_peers.is_empty());
        assert_eq!(got[0].line, 4);
    }

    #[test]
    fn unicast_peers_are_the_first_word_of_each_line_of_the_block() {
        let got = read(
            "vrrp_instance U\n{\n interface veth0\n virtual_router_id 7\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  10.0.0.2\n  10.0.0.3 min_ttl 255\n }\n}\n",
        )
        .unwrap();
        let peers: Vec<String> = got[0].unicast_peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(peers, ["10.0.0.2", "10.0.0.3"]);
    }

    #[test]
    fn an_ipv6_first_virtual_address_makes_an_ipv6_instance() {
        let got = read(
            "vrrp_instance V6 {\n interface eth1\n virtual_router_id 9\n version 3\n virtual_ipaddress {\n  fd00::10/64\n  192.0.2.1\n }\n}\n",
        )
        .unwrap();
        assert_eq!(got[0].family, Family::Ipv6);
    }

    #[test]
    fn the_same_vrid_may_serve_both_families_on_one_interface() {
        let got = read(
            "vrrp_instance A {\n interface e\n virtual_router_id 5\n}\nvrrp_instance B {\n interface e\n virtual_router_id 5\n native_ipv6\n}\n",
        )
        .unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_duplicate_vrid_on_one_interface_is_an_error_naming_both() {
        let error = read(
            "vrrp_instance A {\n interface e\n virtual_router_id 5\n}\nvrrp_instance B {\n interface e\n virtual_router_id 5\n}\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "keepalived.conf:5:15: error: virtual_router_id 5 on e is already used by vrrp_instance A (line 1)"
        );
    }

    #[test]
    fn an_out_of_range_vrid_is_an_error_at_the_value() {
        let error = read("vrrp_instance A {\n  interface e\n  virtual_router_id 256\n}\n").unwrap_err();
        assert_eq!((error.line, error.column), (3, 21));
        assert!(error.message.contains("not in 1..255"), "{error}");
    }

    #[test]
    fn a_missing_interface_is_an_error_at_the_instance_name() {
        let error = read("vrrp_instance NoIf {\n virtual_router_id 3\n}\n").unwrap_err();
        assert_eq!(error.to_string(), "keepalived.conf:1:15: error: vrrp_instance NoIf has no `interface`");
    }

    #[test]
    fn an_unclosed_block_is_an_error_at_its_brace() {
        let error = read("vrrp_instance A {\n interface e\n").unwrap_err();
        assert_eq!((error.line, error.column, error.message.as_str()), (1, 17, "this `{` is never closed"));
    }

    #[test]
    fn a_peer_of_the_other_family_is_an_error() {
        let error = read(
            "vrrp_instance A {\n interface e\n virtual_router_id 1\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  fd00::2\n }\n}\n",
        )
        .unwrap_err();
        assert_eq!((error.line, error.column), (6, 3));
    }

    #[test]
    fn debian_sample_keepalived_conf_is_read_when_installed() {
        // Debian's keepalived package ships samples; the tests' setup installs it.
        let sample = Path::new("/usr/share/doc/keepalived/samples/keepalived.conf.vrrp");
        if !sample.exists() {
            assert!(std::env::var_os("CI").is_none(), "{} is missing under CI", sample.display());
            return;
        }
        let got = read_instances(sample).unwrap();
        assert!(!got.is_empty());
    }
}
