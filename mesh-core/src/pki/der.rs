//! The few DER steps x509-parser does not hand us as raw bytes: the contents of the
//! `AlgorithmIdentifier`s and the signature `BIT STRING`, which rustls-webpki's verification
//! algorithms take as-is.

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const SEQUENCE: u8 = 0x30;

/// Splits one DER TLV off the front of `input`: `(tag, contents, rest)`. `None` on truncated
/// or over-long input (DER lengths beyond 4 bytes never occur in certificates).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The pieces of a signed certificate that a signature check needs.
pub(crate) struct SignedParts<'a> {
    /// The complete `tbsCertificate` TLV: the signed message.
    pub(crate) tbs: &'a [u8],
    /// Contents of the outer `signatureAlgorithm` SEQUENCE.
    pub(crate) signature_alg: &'a [u8],
    /// The signature bytes.
    pub(crate) signature: &'a [u8],
}

/// Splits `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`.
pub(crate) fn signed_parts(cert_der: &[u8]) -> Option<SignedParts<'_>> {
    let (tag, body, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_tbs) = tlv(body)?;
    let tbs = &body[..body.len() - after_tbs.len()];
    let (tag, signature_alg, after_alg) = tlv(after_tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, bits, _) = tlv(after_alg)?;
    if tag != BIT_STRING {
        return None;
    }
    let (&unused, signature) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    Some(SignedParts {
        tbs,
        signature_alg,
        signature,
    })
}

/// Splits `SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }` into
/// the contents of `algorithm` and the key bytes.
pub(crate) fn spki_parts(spki_der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, _) = tlv(spki_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, alg, rest) = tlv(body)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, bits, _) = tlv(rest)?;
    if tag != BIT_STRING {
        return None;
    }
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some((alg, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        assert_eq!(
            tlv(&[0x02, 0x01, 0x05, 0xff]),
            Some((0x02, &[5u8][..], &[0xffu8][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let (tag, contents, rest) = tlv(&long).unwrap();
        assert_eq!((tag, contents.len(), rest.len()), (0x04, 0x80, 0));
    }

    #[test]
    fn refuses_truncated_input() {
        assert_eq!(tlv(&[0x30, 0x05, 0x01]), None);
        assert_eq!(tlv(&[0x30, 0x82, 0x01]), None);
        assert_eq!(tlv(&[0x30]), None);
    }
}
