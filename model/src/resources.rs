//! `resources`, `network`, `port` and `device` blocks.

use serde::{Deserialize, Serialize};

use super::common::Extra;
use super::placement::{Affinity, Constraint};

/// Task `resources` (`Resources`). `CPU` is MHz, memory and disk are MB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Resources {
    #[serde(rename = "CPU")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cpu: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cores: Option<i32>,
    #[serde(rename = "MemoryMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory_mb: Option<i32>,
    #[serde(rename = "MemoryMaxMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub memory_max_mb: Option<i32>,
    #[serde(rename = "DiskMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub disk_mb: Option<i32>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub networks: Vec<NetworkResource>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub devices: Vec<RequestedDevice>,
    #[serde(rename = "NUMA")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub numa: Option<serde_json::Value>,
    #[serde(rename = "SecretsMB")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub secrets_mb: Option<i32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `network` block (group level; task level is legacy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkResource {
    /// `host` (default), `bridge`, `none`, `cni/<name>`.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub mode: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub device: String,
    #[serde(rename = "CIDR")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cidr: String,
    #[serde(rename = "IP")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ip: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub hostname: String,
    #[serde(rename = "MBits")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub mbits: Option<i32>,
    #[serde(rename = "DNS")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dns: Option<DnsConfig>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub reserved_ports: Vec<Port>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub dynamic_ports: Vec<Port>,
    #[serde(rename = "CNI")]
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub cni: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `port "label" {}`: in `ReservedPorts` when it has a static `Value`, else in `DynamicPorts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Port {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub label: String,
    /// The host port: static for reserved ports, assigned by the scheduler for dynamic ones.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub value: i32,
    /// Port inside the network namespace; 0 = same as `Value`, -1 = same as the host port.
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub to: i32,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub host_network: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub ignore_collision: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DnsConfig {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub servers: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub searches: Vec<String>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub options: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `device "vendor/type/name" { count = n }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RequestedDevice {
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub name: String,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub constraints: Vec<Constraint>,
    #[serde(skip_serializing_if = "crate::stored::is_default")]
    pub affinities: Vec<Affinity>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Lowest and highest port a dynamic port is drawn from (Nomad's client defaults).
pub const DYNAMIC_PORT_MIN: i32 = 20000;
pub const DYNAMIC_PORT_MAX: i32 = 32000;
/// Highest valid port number.
pub const PORT_MAX: i32 = 65535;

/// Parse a port list such as a node's `ReservedHostPorts` (`"22,80,8000-8100"`) into inclusive
/// ranges. Empty input is no ports. Errors say which part is wrong.
pub fn parse_port_ranges(spec: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut ranges = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let port = |s: &str| -> Result<u16, String> {
            match s.trim().parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("\"{s}\" in \"{part}\" is not a port between 1 and {PORT_MAX}")),
                Ok(p) => Ok(p),
            }
        };
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (port(lo)?, port(hi)?),
            None => {
                let p = port(part)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("port range \"{part}\" ends before it starts"));
        }
        ranges.push((lo, hi));
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_singles_and_ranges_and_reject_bad_parts() {
        assert_eq!(parse_port_ranges("22, 80,8000-8100"), Ok(vec![(22, 22), (80, 80), (8000, 8100)]));
        assert_eq!(parse_port_ranges(""), Ok(vec![]));
        assert!(parse_port_ranges("0").is_err());
        assert!(parse_port_ranges("70000").is_err());
        assert!(parse_port_ranges("90-80").unwrap_err().contains("ends before it starts"));
        assert!(parse_port_ranges("http").is_err());
    }
}
