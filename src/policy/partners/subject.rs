//! Certificate subjects as identities: [`Dn`] is an RDNSequence of (attribute OID, value) pairs,
//! parsed from the policy with a syntax that cannot express an ambiguous value, and compared with
//! a certificate's DER attribute by attribute (never as rendered text).

/// One attribute of a distinguished name: its type (the DER content octets of the OID) and its
/// value (the characters of a UTF8String, PrintableString, IA5String or NumericString).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attr {
    pub(super) oid: Vec<u8>,
    pub(super) value: String,
}

/// A distinguished name whose every RDN holds one attribute, in certificate (DER) order. Two are
/// equal when they have the same number of RDNs and each pair has the same OID and exactly the
/// same value: case, spaces and every character count; the string type of the certificate's
/// value does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn(pub(super) Vec<Attr>);

/// Attribute types a policy may name by their short name (RFC 4514 §3, plus `SERIALNUMBER` and
/// `EMAILADDRESS`); any other is written as a dotted OID.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("STREET", "2.5.4.9"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1"),
];

/// Characters a policy subject value may not contain: each either separates RDNs or attributes,
/// or needs an escape in RFC 4514 — the policy syntax has no escapes, so no value is ambiguous.
const REFUSED_IN_VALUES: &[char] = &[',', '+', '=', '\\', '"', '<', '>', ';', '#'];

impl Dn {
    /// Parse a policy subject: `TYPE=value, TYPE=value, …` in the order the certificate encodes
    /// its RDNs — the order `openssl x509 -noout -subject` prints (`C = IN, O = ICMR, CN = icmr`
    /// can be pasted as is); RFC 4514 strings list them the other way round. `TYPE` is a short
    /// name (any case) or a dotted OID such as `2.5.4.97`; spaces around names, `=`, values and
    /// `,` are ignored. Refused: an empty RDN, a `+` (multi-valued RDNs are not supported), and
    /// values that are empty or contain one of `, + = \ " < > ; #` or a control character. A
    /// certificate whose subject needs any of those is identified by its `spki_sha256` instead.
    pub fn parse_policy(s: &str) -> Result<Dn, String> {
        if s.trim().is_empty() {
            return Err("an empty subject".into());
        }
        let mut attrs = Vec::new();
        for (i, part) in s.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("RDN {} is empty: a stray `,`?", i + 1));
            }
            if part.contains('+') {
                return Err(format!(
                    "`{part}`: `+` (a multi-valued RDN, or a `+` in a value) is not supported; \
                     identify this partner by `spki_sha256`"
                ));
            }
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("`{part}`: expected TYPE=value, like CN=icmr"));
            };
            let (name, value) = (name.trim(), value.trim());
            let oid = match SHORT_NAMES.iter().find(|(short, _)| short.eq_ignore_ascii_case(name)) {
                Some((_, dotted)) => encode_oid(dotted),
                None => encode_oid(name),
            }
            .ok_or_else(|| {
                format!("`{name}` is neither a known attribute type ({}) nor a dotted OID", known_names())
            })?;
            if value.is_empty() {
                return Err(format!("`{part}`: the value is empty"));
            }
            if let Some(c) = value.chars().find(|c| REFUSED_IN_VALUES.contains(c) || c.is_control()) {
                return Err(format!(
                    "`{part}`: the value contains {c:?}, which a subject here cannot carry unambiguously; \
                     identify this partner by `spki_sha256`"
                ));
            }
            attrs.push(Attr { oid, value: value.to_string() });
        }
        Ok(Dn(attrs))
    }

    /// The subject of a certificate, attribute by attribute from its DER. `None` when it cannot
    /// equal any policy subject: a multi-valued RDN, or a value that is not a UTF8String,
    /// PrintableString, IA5String or NumericString (BMPString, TeletexString, … are not decoded,
    /// so they never match).
    pub fn from_x509(name: &x509_parser::x509::X509Name<'_>) -> Option<Dn> {
        let mut attrs = Vec::new();
        for rdn in name.iter() {
            let mut set = rdn.iter();
            let (Some(attr), None) = (set.next(), set.next()) else { return None };
            let value = attr.as_str().ok()?;
            attrs.push(Attr { oid: attr.attr_type().as_bytes().to_vec(), value: value.to_string() });
        }
        Some(Dn(attrs))
    }
}

/// `O=ICMR, CN=icmr`: short names where known, dotted OIDs otherwise, and RFC 4514 escapes for
/// anything in a value that could be misread (logs of certificates only; policy values have none).
impl std::fmt::Display for Dn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match SHORT_NAMES.iter().find(|(_, dotted)| encode_oid(dotted).as_ref() == Some(&a.oid)) {
                Some((short, _)) => f.write_str(short)?,
                None => f.write_str(&dotted_oid(&a.oid))?,
            }
            f.write_str("=")?;
            for c in a.value.chars() {
                if REFUSED_IN_VALUES.contains(&c) {
                    write!(f, "\\{c}")?;
                } else if c.is_control() {
                    write!(f, "\\{:02x}", u32::from(c))?;
                } else {
                    write!(f, "{c}")?;
                }
            }
        }
        Ok(())
    }
}

pub(super) fn known_names() -> String {
    SHORT_NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The DER content octets of a dotted OID (`2.5.4.3` → `55 04 03`); `None` unless it is two or
/// more decimal arcs without leading zeros, the first 0–2 and (under 2) the second below 40.
pub(super) fn encode_oid(dotted: &str) -> Option<Vec<u8>> {
    let mut arcs = Vec::new();
    for arc in dotted.split('.') {
        let leading_zero = arc.len() > 1 && arc.starts_with('0');
        if arc.is_empty() || leading_zero || !arc.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        arcs.push(arc.parse::<u64>().ok()?);
    }
    let (&first, &second) = (arcs.first()?, arcs.get(1)?);
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let head = first.checked_mul(40)?.checked_add(second)?;
    for arc in std::iter::once(head).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Some(out)
}

/// The dotted form of DER OID content octets (for display only).
pub(super) fn dotted_oid(der: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in der {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}
