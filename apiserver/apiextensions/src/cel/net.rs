//! The Kubernetes IP and CIDR CEL libraries (mirrors apiserver pkg/cel/library/{ip,cidr}.go):
//! `ip()`, `isIP()`, `ip.isCanonical()`, `family()`, `isLoopback()`..., `cidr()`, `isCIDR()`,
//! `containsIP()`, `containsCIDR()`, `prefixLength()`, `masked()`; shared helpers of the
//! opaque-typed libraries.

use cel::common::types::{STRING_TYPE, Type};
use cel::common::value::{CowVal, Val};
use cel::objects::Opaque;
use cel::{Env, ExecutionError, Value};
use std::net::IpAddr;
use std::sync::Arc;

const IP_TYPE: &str = "net.IP";
const CIDR_TYPE: &str = "net.CIDR";

#[derive(Debug, PartialEq, Eq)]
struct Ip(IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        IP_TYPE
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        CIDR_TYPE
    }
}

pub(crate) type Res<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;
pub(crate) type Function = for<'b, 'v> fn(Vec<CowVal<'b, 'v>>) -> Res<'b, 'v>;

fn t(name: &'static str) -> Type {
    Type::new_opaque_type(name)
}

/// Registers the IP and CIDR libraries.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let globals: [(&str, &str, Vec<Type>, Function); 7] = [
        ("ip", "string_to_ip", vec![STRING_TYPE], string_to_ip),
        ("isIP", "is_ip", vec![STRING_TYPE], is_ip),
        (
            "ip.isCanonical",
            "ip_is_canonical",
            vec![STRING_TYPE],
            is_canonical,
        ),
        ("string", "ip_to_string", vec![t(IP_TYPE)], to_string),
        ("cidr", "string_to_cidr", vec![STRING_TYPE], string_to_cidr),
        ("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr),
        ("string", "cidr_to_string", vec![t(CIDR_TYPE)], to_string),
    ];
    for (name, id, args, f) in globals {
        env.add_overload(name, id, args, f)?;
    }
    let members: [(&str, &str, &'static str, Vec<Type>, Function); 13] = [
        ("family", "ip_family", IP_TYPE, vec![], family),
        (
            "isUnspecified",
            "ip_is_unspecified",
            IP_TYPE,
            vec![],
            is_unspecified,
        ),
        ("isLoopback", "ip_is_loopback", IP_TYPE, vec![], is_loopback),
        (
            "isLinkLocalMulticast",
            "ip_is_link_local_multicast",
            IP_TYPE,
            vec![],
            is_llm,
        ),
        (
            "isLinkLocalUnicast",
            "ip_is_link_local_unicast",
            IP_TYPE,
            vec![],
            is_llu,
        ),
        (
            "isGlobalUnicast",
            "ip_is_global_unicast",
            IP_TYPE,
            vec![],
            is_global,
        ),
        (
            "containsIP",
            "cidr_contains_ip_string",
            CIDR_TYPE,
            vec![STRING_TYPE],
            contains_ip,
        ),
        (
            "containsIP",
            "cidr_contains_ip_ip",
            CIDR_TYPE,
            vec![t(IP_TYPE)],
            contains_ip,
        ),
        (
            "containsCIDR",
            "cidr_contains_cidr_string",
            CIDR_TYPE,
            vec![STRING_TYPE],
            contains_cidr,
        ),
        (
            "containsCIDR",
            "cidr_contains_cidr",
            CIDR_TYPE,
            vec![t(CIDR_TYPE)],
            contains_cidr,
        ),
        ("ip", "cidr_ip", CIDR_TYPE, vec![], cidr_ip),
        (
            "prefixLength",
            "cidr_prefix_length",
            CIDR_TYPE,
            vec![],
            prefix_length,
        ),
        ("masked", "cidr_masked", CIDR_TYPE, vec![], masked),
    ];
    for (name, id, target, args, f) in members {
        env.add_member_overload(name, id, t(target), args, f)?;
    }
    Ok(())
}

pub(crate) fn out<'b, 'v>(v: Value) -> Res<'b, 'v> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

pub(crate) fn opaque<'b, 'v>(v: impl Opaque) -> Res<'b, 'v> {
    out(Value::Opaque(Arc::new(v)))
}

pub(crate) fn string(s: impl Into<String>) -> Value {
    Value::String(Arc::new(s.into()))
}

pub(crate) fn err(function: &str, msg: String) -> ExecutionError {
    ExecutionError::function_error(function, msg)
}

/// The arguments as values; the first must be a string for the string functions.
pub(crate) fn str_arg(args: &[CowVal<'_, '_>], i: usize) -> Result<String, ExecutionError> {
    match args.get(i).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::String(s))) => Ok(s.to_string()),
        Some(Err(e)) => Err(e),
        _ => Err(ExecutionError::invalid_argument_count(i + 1, args.len())),
    }
}

pub(crate) fn with_opaque<T: 'static, R>(
    args: &[CowVal<'_, '_>],
    i: usize,
    f: impl FnOnce(&T) -> R,
) -> Result<R, ExecutionError> {
    match args.get(i).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::Opaque(o))) => o
            .downcast_ref::<T>()
            .map(f)
            .ok_or_else(|| ExecutionError::function_error("opaque", "unexpected type")),
        Some(Err(e)) => Err(e),
        _ => Err(ExecutionError::invalid_argument_count(i + 1, args.len())),
    }
}

fn ipv4_mapped(addr: &IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    if raw.contains('%') {
        return Err(format!("IP address {raw:?} with zone value is not allowed"));
    }
    let addr: IpAddr = raw.parse().map_err(|e| {
        format!("IP Address {raw:?} parse error during conversion from string: {e}")
    })?;
    if ipv4_mapped(&addr) {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(addr)
}

fn string_to_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let addr = parse_ip(&str_arg(&args, 0)?).map_err(|e| err("ip", e))?;
    opaque(Ip(addr))
}

fn is_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(parse_ip(&str_arg(&args, 0)?).is_ok()))
}

fn is_canonical<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let s = str_arg(&args, 0)?;
    let addr = parse_ip(&s).map_err(|e| err("ip.isCanonical", e))?;
    out(Value::Bool(addr.to_string() == s))
}

fn cidr_string(c: &Cidr) -> String {
    format!("{}/{}", c.addr, c.bits)
}

fn to_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    if let Ok(s) = with_opaque::<Ip, _>(&args, 0, |ip| ip.0.to_string()) {
        return out(string(s));
    }
    out(string(with_opaque::<Cidr, _>(&args, 0, cidr_string)?))
}

fn is_link_local_multicast(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

fn is_link_local_unicast(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Go's `netip.Addr.IsGlobalUnicast`.
fn is_global_unicast(a: &IpAddr) -> bool {
    let broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    !a.is_unspecified()
        && !a.is_loopback()
        && !a.is_multicast()
        && !is_link_local_unicast(a)
        && !broadcast
}

/// An overload reading a property of its opaque receiver.
macro_rules! query {
    ($name:ident, $t:ty, $body:expr) => {
        fn $name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
            let v = with_opaque::<$t, _>(&args, 0, $body)?;
            out(v)
        }
    };
}

query!(family, Ip, |ip| Value::Int(if ip.0.is_ipv4() {
    4
} else {
    6
}));
query!(is_unspecified, Ip, |ip| Value::Bool(ip.0.is_unspecified()));
query!(is_loopback, Ip, |ip| Value::Bool(ip.0.is_loopback()));
query!(is_llm, Ip, |ip| Value::Bool(is_link_local_multicast(&ip.0)));
query!(is_llu, Ip, |ip| Value::Bool(is_link_local_unicast(&ip.0)));
query!(is_global, Ip, |ip| Value::Bool(is_global_unicast(&ip.0)));
query!(prefix_length, Cidr, |c| Value::Int(i64::from(c.bits)));

fn cidr_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let addr = with_opaque::<Cidr, _>(&args, 0, |c| c.addr)?;
    opaque(Ip(addr))
}

fn masked<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let c = with_opaque::<Cidr, _>(&args, 0, |c| Cidr {
        addr: from_bits(masked_bits(&c.addr, c.bits), c.addr.is_ipv4()),
        bits: c.bits,
    })?;
    opaque(c)
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(u32::try_from(bits).unwrap_or(0).into())
    } else {
        IpAddr::V6(bits.into())
    }
}

fn parse_cidr(raw: &str) -> Result<Cidr, String> {
    let fail = |e: &str| format!("network address parse error during conversion from string: {e}");
    let (addr, bits) = raw
        .split_once('/')
        .ok_or_else(|| fail(&format!("netip.ParsePrefix({raw:?}): no '/'")))?;
    if addr.contains('%') {
        return Err(fail(&format!(
            "netip.ParsePrefix({raw:?}): IPv6 zones cannot be present in a prefix"
        )));
    }
    let ip: IpAddr = addr.parse().map_err(|e| {
        fail(&format!(
            "netip.ParsePrefix({raw:?}): ParseAddr({addr:?}): {e}"
        ))
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= max && (bits == "0" || !bits.starts_with('0')))
        .ok_or_else(|| {
            fail(&format!(
                "netip.ParsePrefix({raw:?}): bad bits after slash: {bits:?}"
            ))
        })?;
    if ipv4_mapped(&ip) {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(Cidr { addr: ip, bits })
}

fn string_to_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let c = parse_cidr(&str_arg(&args, 0)?).map_err(|e| {
        err(
            "cidr",
            format!("network address parse error during conversion from string: {e}"),
        )
    })?;
    opaque(c)
}

fn is_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(parse_cidr(&str_arg(&args, 0)?).is_ok()))
}

fn bits_of(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

fn masked_bits(a: &IpAddr, bits: u8) -> u128 {
    let width = if a.is_ipv4() { 32 } else { 128 };
    let shift = width - u32::from(bits);
    if shift >= 128 {
        0
    } else {
        bits_of(a) >> shift << shift
    }
}

fn contains(c: &Cidr, ip: &IpAddr) -> bool {
    c.addr.is_ipv4() == ip.is_ipv4() && masked_bits(&c.addr, c.bits) == masked_bits(ip, c.bits)
}

fn contains_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let ip = match str_arg(&args, 1) {
        Ok(s) => parse_ip(&s).map_err(|e| err("containsIP", e))?,
        Err(_) => with_opaque::<Ip, _>(&args, 1, |ip| ip.0)?,
    };
    let found = with_opaque::<Cidr, _>(&args, 0, |c| contains(c, &ip))?;
    out(Value::Bool(found))
}

fn contains_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let other = match str_arg(&args, 1) {
        Ok(s) => parse_cidr(&s).map_err(|e| err("containsCIDR", e))?,
        Err(_) => with_opaque::<Cidr, _>(&args, 1, |c| Cidr {
            addr: c.addr,
            bits: c.bits,
        })?,
    };
    let found = with_opaque::<Cidr, _>(&args, 0, |c| {
        contains(c, &other.addr) && c.bits <= other.bits
    })?;
    out(Value::Bool(found))
}

#[cfg(test)]
mod tests {
    use crate::cel::library::{assert_true as t, test_eval as eval};

    #[test]
    fn ip_library() {
        t("isIP('1.2.3.4') && isIP('2001:db8::1') && !isIP('1.2.3') && !isIP('::ffff:1.2.3.4')");
        t("!isIP('fe80::1%eth0')");
        t("ip('1.2.3.4').family() == 4 && ip('::1').family() == 6");
        t("ip('127.0.0.1').isLoopback() && ip('0.0.0.0').isUnspecified()");
        t("ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()");
        t("ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()");
        t("ip('10.0.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()");
        t("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')");
        t("string(ip('2001:db8:0:0::1')) == '2001:db8::1'");
        t("ip('1.2.3.4') == ip('1.2.3.4') && ip('1.2.3.4') != ip('1.2.3.5')");
        assert!(
            eval("ip('x')")
                .unwrap_err()
                .contains("parse error during conversion")
        );
    }

    #[test]
    fn cidr_library() {
        t("isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0/33') && !isCIDR('10.0.0.0')");
        t(
            "cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP('11.0.0.1')",
        );
        t("cidr('10.0.0.0/8').containsIP(ip('10.0.0.1'))");
        t(
            "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')",
        );
        t(
            "cidr('192.168.0.1/24').ip() == ip('192.168.0.1') && cidr('192.168.0.1/24').prefixLength() == 24",
        );
        t("string(cidr('192.168.0.1/24').masked()) == '192.168.0.0/24'");
        t("cidr('2001:db8::/32').containsIP('2001:db8::1')");
    }
}
