//! Service account signing and verification keys from PEM files (mirrors client-go's
//! `util/keyutil` PrivateKeyFromFile / PublicKeysFromFile and `keyIDFromPublicKey` of
//! pkg/serviceaccount/jwt.go). RSA and ECDSA (P-256, P-384) keys; the key ID of a key is the
//! unpadded base64url SHA-256 of its public key's PKIX (SubjectPublicKeyInfo) DER.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair, RsaKeyPair,
};
use sha2::{Digest, Sha256};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The private key that signs issued tokens, with its algorithm and key ID.
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub(crate) key: EncodingKey,
}

/// A public key accepted when verifying tokens.
pub struct VerifyingKey {
    pub kid: String,
    pub(crate) key: DecodingKey,
    /// The JWS algorithms this key verifies.
    pub(crate) algorithms: Vec<Algorithm>,
}

/// The key ID of a public key given as PKIX DER (upstream `keyIDFromPublicKey`).
pub fn key_id(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

// --- minimal DER writing (wrapping known structures; no parsing) ---

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    der(0x03, &[&[0u8][..], bytes].concat())
}

/// `rsaEncryption` with NULL parameters, as Go's `x509.MarshalPKIXPublicKey` writes it.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// `id-ecPublicKey`.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn rsa_spki(pkcs1_public: &[u8]) -> Vec<u8> {
    seq(&[RSA_ALGORITHM, &bit_string(pkcs1_public)])
}

fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[EC_PUBLIC_KEY_OID, curve_oid]), &bit_string(point)])
}

/// Wraps a SEC1 `EC PRIVATE KEY` into PKCS#8 for the named curve.
fn sec1_to_pkcs8(curve_oid: &[u8], sec1: &[u8]) -> Vec<u8> {
    seq(&[
        &[0x02, 0x01, 0x00],
        &seq(&[EC_PUBLIC_KEY_OID, curve_oid]),
        &der(0x04, sec1),
    ])
}

// --- private keys ---

struct ParsedPrivate {
    alg: Algorithm,
    spki: Vec<u8>,
    key: EncodingKey,
}

const CURVES: [(&[u8], &EcdsaSigningAlgorithm, Algorithm); 2] = [
    (P256_OID, &ECDSA_P256_SHA256_FIXED_SIGNING, Algorithm::ES256),
    (P384_OID, &ECDSA_P384_SHA384_FIXED_SIGNING, Algorithm::ES384),
];

fn ec_from_pkcs8(pkcs8: &[u8]) -> Option<ParsedPrivate> {
    let rng = ring::rand::SystemRandom::new();
    CURVES.iter().find_map(|(oid, signing, alg)| {
        let kp = EcdsaKeyPair::from_pkcs8(signing, pkcs8, &rng).ok()?;
        Some(ParsedPrivate {
            alg: *alg,
            spki: ec_spki(oid, kp.public_key().as_ref()),
            key: EncodingKey::from_ec_der(pkcs8),
        })
    })
}

fn rsa_private(kp: &RsaKeyPair, block: &pem::Pem) -> Option<ParsedPrivate> {
    let key = EncodingKey::from_rsa_pem(pem::encode(block).as_bytes()).ok()?;
    Some(ParsedPrivate {
        alg: Algorithm::RS256,
        spki: rsa_spki(kp.public_key().as_ref()),
        key,
    })
}

/// A private key block, or None for other blocks and keys of unsupported types.
fn parse_private(block: &pem::Pem) -> Option<ParsedPrivate> {
    let der = block.contents();
    match block.tag() {
        "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(der) {
            Ok(kp) => rsa_private(&kp, block),
            Err(_) => ec_from_pkcs8(der),
        },
        "RSA PRIVATE KEY" => rsa_private(&RsaKeyPair::from_der(der).ok()?, block),
        "EC PRIVATE KEY" => CURVES
            .iter()
            .find_map(|(oid, _, _)| ec_from_pkcs8(&sec1_to_pkcs8(oid, der))),
        _ => None,
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("open {path}: {e}"))
}

fn pem_blocks(data: &[u8]) -> Vec<pem::Pem> {
    pem::parse_many(data).unwrap_or_default()
}

/// The first RSA or ECDSA private key of PEM `data`.
pub fn signing_key_from_pem(data: &[u8]) -> Result<SigningKey, String> {
    let parsed = pem_blocks(data)
        .iter()
        .find_map(parse_private)
        .ok_or_else(|| "data does not contain a valid RSA or ECDSA private key".to_string())?;
    Ok(SigningKey {
        alg: parsed.alg,
        kid: key_id(&parsed.spki),
        key: parsed.key,
    })
}

/// `--service-account-signing-key-file`.
pub fn signing_key_from_file(path: &str) -> Result<SigningKey, String> {
    signing_key_from_pem(&read(path)?)
        .map_err(|e| format!("error reading private key file {path}: {e}"))
}

// --- public keys ---

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// A verifying key from PKIX DER, or None for unsupported key types.
fn verifying_key(spki_der: &[u8]) -> Option<VerifyingKey> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    let bits: &[u8] = spki.subject_public_key.data.as_ref();
    let (key, algorithms) = if spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        (DecodingKey::from_rsa_der(bits), RSA_ALGORITHMS.to_vec())
    } else if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
        let alg = if curve == OID_EC_P256 {
            Algorithm::ES256
        } else if curve == OID_NIST_EC_P384 {
            Algorithm::ES384
        } else {
            return None;
        };
        (DecodingKey::from_ec_der(bits), vec![alg])
    } else {
        return None;
    };
    Some(VerifyingKey {
        kid: key_id(spki.raw),
        key,
        algorithms,
    })
}

/// The public key (PKIX DER) of one PEM block: a public key, a certificate's key, or the public
/// half of a private key. None for other blocks.
fn public_spki(block: &pem::Pem) -> Option<Vec<u8>> {
    if let Some(p) = parse_private(block) {
        return Some(p.spki);
    }
    let der = block.contents();
    match block.tag() {
        "PUBLIC KEY" => Some(der.to_vec()),
        "RSA PUBLIC KEY" => Some(rsa_spki(der)),
        "CERTIFICATE" => {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            Some(cert.public_key().raw.to_vec())
        }
        _ => None,
    }
}

/// Every RSA or ECDSA public key of PEM `data` (private keys count with their public half;
/// other blocks are skipped, as upstream tolerates e.g. `EC PARAMETERS`).
pub fn verifying_keys_from_pem(data: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let keys: Vec<VerifyingKey> = pem_blocks(data)
        .iter()
        .filter_map(public_spki)
        .filter_map(|spki| verifying_key(&spki))
        .collect();
    if keys.is_empty() {
        return Err("data does not contain any valid RSA or ECDSA public keys".into());
    }
    Ok(keys)
}

/// `--service-account-key-file`.
pub fn verifying_keys_from_file(path: &str) -> Result<Vec<VerifyingKey>, String> {
    verifying_keys_from_pem(&read(path)?)
        .map_err(|e| format!("error reading public key file {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_KEY: &str = include_str!("testdata/rsa.key");
    const RSA_PKCS1_KEY: &str = include_str!("testdata/rsa-pkcs1.key");
    const RSA_PUB: &str = include_str!("testdata/rsa.pub");
    const RSA_PKCS1_PUB: &str = include_str!("testdata/rsa-pkcs1.pub");
    const RSA_CRT: &str = include_str!("testdata/rsa.crt");
    const EC_KEY: &str = include_str!("testdata/ec.key");
    const EC_SEC1_KEY: &str = include_str!("testdata/ec-sec1.key");
    const EC_PUB: &str = include_str!("testdata/ec.pub");
    const EC384_SEC1_KEY: &str = include_str!("testdata/ec384-sec1.key");
    const EC384_PUB: &str = include_str!("testdata/ec384.pub");

    /// The key IDs as `openssl pkey -pubout -outform DER | sha256 | base64url` computes them.
    const RSA_KID: &str = "dA7p4fYAFr6VPHkW1uqFim12SCEILoRHtU1tukdOQb0";
    const EC_KID: &str = "w_y9Y_F0S86C6C-9oJuKGbJTL-LwHZ4TDgHusfkPPsE";

    #[test]
    fn key_ids_are_the_sha256_of_the_pkix_public_key() {
        for pem in [RSA_KEY, RSA_PKCS1_KEY] {
            let k = signing_key_from_pem(pem.as_bytes()).unwrap();
            assert_eq!(k.kid, RSA_KID);
            assert_eq!(k.alg, Algorithm::RS256);
        }
        for pem in [RSA_PUB, RSA_PKCS1_PUB, RSA_CRT, RSA_KEY] {
            let keys = verifying_keys_from_pem(pem.as_bytes()).unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].kid, RSA_KID, "{pem}");
        }
        for pem in [EC_KEY, EC_SEC1_KEY] {
            let k = signing_key_from_pem(pem.as_bytes()).unwrap();
            assert_eq!((k.kid.as_str(), k.alg), (EC_KID, Algorithm::ES256));
        }
        assert_eq!(
            verifying_keys_from_pem(EC_PUB.as_bytes()).unwrap()[0].kid,
            EC_KID
        );
        let k384 = signing_key_from_pem(EC384_SEC1_KEY.as_bytes()).unwrap();
        assert_eq!(k384.alg, Algorithm::ES384);
        let v384 = verifying_keys_from_pem(EC384_PUB.as_bytes()).unwrap();
        assert_eq!(v384[0].kid, k384.kid);
        assert_eq!(v384[0].algorithms, vec![Algorithm::ES384]);
    }

    #[test]
    fn several_keys_per_file_and_foreign_blocks() {
        let both = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{RSA_PUB}{EC_PUB}"
        );
        let keys = verifying_keys_from_pem(both.as_bytes()).unwrap();
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, vec![RSA_KID, EC_KID]);
        assert_eq!(
            verifying_keys_from_pem(b"no pem here").err().unwrap(),
            "data does not contain any valid RSA or ECDSA public keys"
        );
        assert_eq!(
            signing_key_from_pem(RSA_PUB.as_bytes()).err().unwrap(),
            "data does not contain a valid RSA or ECDSA private key"
        );
    }

    #[test]
    fn files_name_the_file_in_errors() {
        let e = verifying_keys_from_file("/nonexistent/sa.pub")
            .err()
            .unwrap();
        assert!(e.starts_with("open /nonexistent/sa.pub"), "{e}");
        let dir = std::env::temp_dir().join(format!("sakeys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "").unwrap();
        let e = signing_key_from_file(f.to_str().unwrap()).err().unwrap();
        assert_eq!(
            e,
            format!(
                "error reading private key file {}: data does not contain a valid RSA or ECDSA private key",
                f.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
