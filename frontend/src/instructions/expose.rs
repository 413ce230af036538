//! `EXPOSE`, and the port specs it takes (`80`, `80/udp`, `8000-8002/tcp`, and the
//! `[ip:][hostPort:]containerPort` forms BuildKit still tolerates), expanded to `port/proto`.

use std::net::IpAddr;

use serde::Serialize;

use super::{Request, err_at_least_one};
use crate::diagnostics::Diagnostic;
use crate::parser::go_quote;
use crate::span::Span;

/// `EXPOSE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposeInstruction {
    /// The port specs as written (unexpanded), sorted as BuildKit sorts them.
    pub ports: Vec<String>,
    /// The whole instruction.
    pub span: Span,
}

pub(crate) fn parse_expose(mut req: Request<'_>) -> Result<ExposeInstruction, Diagnostic> {
    if req.args.is_empty() {
        return Err(err_at_least_one(&req, "EXPOSE"));
    }
    req.parse_flags()?;
    let mut ports = req.args.clone();
    ports.sort();
    Ok(ExposeInstruction {
        ports,
        span: req.span(),
    })
}

/// Expands several (already variable-expanded) specs to `port/proto`, in order.
pub fn parse_port_specs(specs: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for spec in specs {
        out.extend(parse_port_spec(spec)?);
    }
    Ok(out)
}

/// Expands one spec such as `0.0.0.0:8000-8001:80-81/udp` to `["80/udp", "81/udp"]`.
pub fn parse_port_spec(raw: &str) -> Result<Vec<String>, String> {
    port_spec(raw).map_err(|e| format!("invalid port: {}: {e}", go_quote(raw)))
}

fn port_spec(raw: &str) -> Result<Vec<String>, String> {
    let (ip, host_port, container) = split_parts(raw);
    let (container, proto) = container.split_once('/').unwrap_or((container, ""));
    if container.is_empty() {
        return Err("no port specified".to_owned());
    }
    let proto = match proto.to_lowercase().as_str() {
        "" => "tcp".to_owned(),
        p @ ("tcp" | "udp" | "sctp") => p.to_owned(),
        p => return Err(format!("invalid proto: {p}")),
    };
    check_ip(&ip)?;
    let (start, end) =
        port_range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    if !host_port.is_empty() {
        let (hs, he) =
            port_range(host_port).ok_or_else(|| format!("invalid hostPort: {host_port}"))?;
        // A host range is allowed against a single container port (a pool to pick from).
        if end - start != he - hs && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host_port}"
            ));
        }
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `ip:host:container`, where the IP itself may contain colons (everything before the last two).
fn split_parts(raw: &str) -> (String, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [c] => (String::new(), "", c),
        [h, c] => (String::new(), h, c),
        [rest @ .., h, c] => (rest.join(":"), h, c),
        [] => (String::new(), "", ""),
    }
}

fn check_ip(ip: &str) -> Result<(), String> {
    if ip.is_empty() {
        return Ok(());
    }
    let bare = if ip.starts_with('[') {
        // Go strips the brackets with net.SplitHostPort(ip + ":").
        match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) if !inner.contains(['[', ']']) => inner,
            _ => {
                return Err(format!(
                    "invalid IP address {ip}: address {ip}:: missing ']' in address"
                ));
            }
        }
    } else {
        ip
    };
    if bare.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {bare}"));
    }
    Ok(())
}

/// `N` or `N-M` with 16-bit decimal numbers and `N <= M`.
fn port_range(s: &str) -> Option<(u32, u32)> {
    let num = |p: &str| {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u16>().ok().map(u32::from)
    };
    match s.split('-').collect::<Vec<_>>().as_slice() {
        [one] => num(one).map(|p| (p, p)),
        [a, b] => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some((a, b))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_specs() {
        assert_eq!(parse_port_spec("80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port_spec("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(parse_port_spec("8000-8002/sctp").unwrap().len(), 3);
        assert_eq!(parse_port_spec("[::1]:80:80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port_spec("::::80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port_spec("8000-8001:80").unwrap(), ["80/tcp"]);
    }

    #[test]
    fn rejects_bad_specs() {
        for (spec, want) in [
            ("", "invalid port: \"\": no port specified"),
            ("80/icmp", "invalid port: \"80/icmp\": invalid proto: icmp"),
            ("x", "invalid port: \"x\": invalid containerPort: x"),
            (
                "70000",
                "invalid port: \"70000\": invalid containerPort: 70000",
            ),
            ("9-8", "invalid port: \"9-8\": invalid containerPort: 9-8"),
            ("a:80", "invalid port: \"a:80\": invalid hostPort: a"),
            (
                "localhost:1:1",
                "invalid port: \"localhost:1:1\": invalid IP address: localhost",
            ),
            (
                "1-2:1-3",
                "invalid port: \"1-2:1-3\": invalid ranges specified for container and host Ports: 1-3 and 1-2",
            ),
        ] {
            assert_eq!(parse_port_spec(spec).unwrap_err(), want, "{spec}");
        }
    }

    #[test]
    fn expose_sorts_words() {
        use crate::instructions::test_support::node;
        use crate::instructions::{Instruction, parse_instruction};
        let n = node("EXPOSE", &[], &["8080", "443/tcp", "80"]);
        let Ok(Instruction::Expose(e)) = parse_instruction(&n, &n.original) else {
            panic!()
        };
        assert_eq!(e.ports, ["443/tcp", "80", "8080"]);
    }
}
