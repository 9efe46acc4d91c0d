//! The circomlib primitives against their specifications: BLAKE-512's official vectors,
//! circomlib's reference vector, values recorded from circomlibjs 0.1.7, and — when Node.js and
//! circomlibjs are installed (`PROOFMILL_CIRCOMLIB_DIR`) — circomlibjs itself on fresh inputs.

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
        GateInstructions, RangeInstructions,
    },
    halo2_proofs::{
        arithmetic::Field,
        dev::{MockProver, VerifyFailure},
        halo2curves::bn256::Fr,
    },
};
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use super::{
    babyjubjub::{subgroup_order, Point},
    eddsa::{self, PrivateKey, Signature, SignatureError},
    js::circomlibjs,
    poseidon, uint,
};

fn dec(text: &str) -> Fr {
    uint::parse_field(text).expect("decimal field element")
}

fn key_from_hex(text: &str) -> PrivateKey {
    let bytes: [u8; 32] = hex::decode(text)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    PrivateKey::from_bytes(bytes)
}

#[test]
fn blake512_official_vectors() {
    // The BLAKE submission's vectors: one zero byte, and 144 zero bytes.
    assert_eq!(
        hex::encode(eddsa::blake512_digest(&[0u8])),
        "97961587f6d970faba6d2478045de6d1fabd09b61ae50932054d52bc29d31be4ff9102b9f69e2bbdb83be13d4b9c06091e5fa0b48bd081b634058be0ec49beb3"
    );
    assert_eq!(
        hex::encode(eddsa::blake512_digest(&[0u8; 144])),
        "313717d608e9cf758dcb1eb0f0c3cf9fc150b2d500fb33f51c52afc99d358a2f1374b8a38bba7974e7f6ef79cab16f22ce1e649d6e01ad9589c213045d545dde"
    );
}

#[test]
fn values_recorded_from_circomlibjs() {
    // circomlibjs 0.1.7: poseidon([1]), poseidon([1, 2]).
    assert_eq!(
        poseidon::hash(&[Fr::from(1)]),
        dec("18586133768512220936620570745912940619677854269274689475585506675881198879027")
    );
    assert_eq!(
        poseidon::hash(&[Fr::from(1), Fr::from(2)]),
        dec("7853200120776062878684798364095072458815029376092732009249414926327459813530")
    );
    // eddsa.prv2pub and eddsa.signPoseidon(prv, F.e(1234)) for prv = 0x000102…0001.
    let prv = key_from_hex("0001020304050607080900010203040506070809000102030405060708090001");
    let a = prv.public_key();
    assert_eq!(
        a,
        Point {
            x: dec("13277427435165878497778222415993513565335242147425444199013288855685581939618"),
            y: dec("13622229784656158136036771217484571176836296686641868549125388198837476602820"),
        }
    );
    let sig = prv.sign(Fr::from(1234));
    assert_eq!(
        sig,
        Signature {
            r8: Point {
                x: dec(
                    "11220723668893468001994760120794694848178115379170651044669708829805665054484"
                ),
                y: dec(
                    "2367470421002446880004241260470975644531657398480773647535134774673409612366"
                ),
            },
            s: dec("2010143491207902444122668013146870263468969134090678646686512037244361350365"),
        }
    );
    assert_eq!(eddsa::verify(Fr::from(1234), &sig, &a), Ok(()));
}

#[test]
fn native_verifier_refuses_each_defect() {
    let prv = key_from_hex(&"11".repeat(32));
    let other = key_from_hex(&"22".repeat(32));
    let a = prv.public_key();
    let msg = Fr::from(77);
    let sig = prv.sign(msg);
    assert_eq!(eddsa::verify(msg, &sig, &a), Ok(()));
    assert_eq!(
        eddsa::verify(msg + Fr::ONE, &sig, &a),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        eddsa::verify(msg, &sig, &other.public_key()),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        eddsa::verify(msg, &other.sign(msg), &a),
        Err(SignatureError::Mismatch)
    );
    let off_curve = Point {
        x: a.x,
        y: a.y + Fr::ONE,
    };
    assert_eq!(
        eddsa::verify(msg, &sig, &off_curve),
        Err(SignatureError::KeyNotOnCurve)
    );
    let bad_r = Signature {
        r8: off_curve,
        ..sig
    };
    assert_eq!(
        eddsa::verify(msg, &bad_r, &a),
        Err(SignatureError::NonceNotOnCurve)
    );
    // S + l passes circomlib's equation but not its range check.
    let s_plus_l = uint::to_field(&(uint::to_biguint(&sig.s) + subgroup_order()));
    let big_s = Signature { s: s_plus_l, ..sig };
    assert_eq!(
        eddsa::verify(msg, &big_s, &a),
        Err(SignatureError::ScalarTooLarge)
    );
    // The identity key: with R8 = S·B8 the equation holds for any message.
    let forged = Signature {
        r8: Point::base8().mul(&BigUint::from(5u8)),
        s: Fr::from(5),
    };
    assert_eq!(
        eddsa::verify(msg, &forged, &Point::identity()),
        Err(SignatureError::LowOrderKey)
    );
}

/// Lays out one in-circuit verification and requires its result bit to be `expected`.
fn mock_verify(
    msg: Fr,
    key: &Point,
    sig: &Signature,
    expected: bool,
) -> Result<usize, Vec<VerifyFailure>> {
    let k = 16;
    let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
        .use_k(k)
        .use_lookup_bits(8)
        .use_instance_columns(1);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let m = ctx.load_witness(msg);
    let a = super::babyjubjub::load_point(ctx, key);
    let s = eddsa::load_signature(ctx, sig);
    let valid = eddsa::verify_gadget(ctx, &range, m, &a, &s);
    range
        .gate()
        .assert_is_const(ctx, &valid, &Fr::from(u64::from(expected)));
    let cells = builder.statistics().gate.total_advice_per_phase[0];
    builder.calculate_params(Some(crate::BLINDING_ROWS));
    MockProver::run(k as u32, &builder, vec![vec![]])
        .expect("mock prover runs")
        .verify()
        .map(|()| cells)
}

#[test]
fn circuit_accepts_valid_and_flags_or_refuses_invalid_signatures() {
    let prv = key_from_hex(&"33".repeat(32));
    let a = prv.public_key();
    let msg = Fr::from(4242);
    let sig = prv.sign(msg);
    let cells = mock_verify(msg, &a, &sig, true).expect("a valid signature verifies");
    eprintln!("one EdDSA-Poseidon verification: {cells} advice cells");
    mock_verify(msg, &a, &sig, false).expect_err("and is not reported invalid");
    // Another message, another key: the result bit is 0.
    mock_verify(msg + Fr::ONE, &a, &sig, false).expect("wrong message flagged");
    let other = key_from_hex(&"44".repeat(32)).public_key();
    mock_verify(msg, &other, &sig, false).expect("wrong key flagged");
    // The low-order key forgery is flagged too.
    let forged = Signature {
        r8: Point::base8().mul(&BigUint::from(5u8)),
        s: Fr::from(5),
    };
    mock_verify(msg, &Point::identity(), &forged, false).expect("low-order key flagged");
    mock_verify(msg, &Point::identity(), &forged, true).expect_err("low-order key not valid");
    // S + l (which the curve equation alone would accept) violates the constraints outright.
    let s_plus_l = uint::to_field(&(uint::to_biguint(&sig.s) + subgroup_order()));
    for expected in [true, false] {
        mock_verify(msg, &a, &Signature { s: s_plus_l, ..sig }, expected)
            .expect_err("S >= l is unsatisfiable");
    }
    // A key off the curve is unsatisfiable as well.
    let off = Point {
        x: a.x,
        y: a.y + Fr::ONE,
    };
    mock_verify(msg, &off, &sig, false).expect_err("off-curve key");
}

/// Decomposes the value 5 into the bits of `integer` (5 itself, or its alias 5 + p).
fn mock_bits(integer: &BigUint) -> Result<Vec<u64>, Vec<VerifyFailure>> {
    let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
        .use_k(12)
        .use_lookup_bits(8)
        .use_instance_columns(1);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let v = ctx.load_witness(Fr::from(5));
    let bits = eddsa::bits_of_integer(ctx, &range, v, integer);
    assert_eq!(bits.len(), 254);
    let values: Vec<u64> = bits
        .iter()
        .map(|b| u64::from(*b.value() == Fr::ONE))
        .collect();
    builder.calculate_params(Some(crate::BLINDING_ROWS));
    MockProver::run(12, &builder, vec![vec![]])
        .expect("mock prover runs")
        .verify()
        .map(|()| values)
}

#[test]
fn canonical_bits_refuse_the_alias_above_the_modulus() {
    // 5 and 5 + p (< 2^254) both decompose to bits that sum to 5 in the field: only the
    // canonical one may pass, or a prover could multiply by a different scalar.
    let bits = mock_bits(&BigUint::from(5u8)).expect("canonical bits");
    assert_eq!(&bits[..4], &[1, 0, 1, 0]);
    assert!(bits[4..].iter().all(|b| *b == 0));
    let alias = BigUint::from(5u8) + halo2_base::utils::modulus::<Fr>();
    assert!(alias.bits() <= 254);
    mock_bits(&alias).expect_err("the alias h + p is refused");
}

fn random_key(rng: &mut ChaCha20Rng) -> PrivateKey {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    PrivateKey::from_bytes(bytes)
}

fn random_field(rng: &mut ChaCha20Rng) -> Fr {
    Fr::random(rng)
}

fn as_str(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn point_of(v: &Value) -> Point {
    Point {
        x: dec(as_str(&v[0])),
        y: dec(as_str(&v[1])),
    }
}

#[test]
fn poseidon_agrees_with_circomlibjs_for_every_width() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let inputs: Vec<Vec<Fr>> = (1..=poseidon::MAX_INPUTS)
        .flat_map(|n| {
            let random: Vec<Fr> = (0..n).map(|_| random_field(&mut rng)).collect();
            let small: Vec<Fr> = (0..n as u64).map(Fr::from).collect();
            [random, small]
        })
        .collect();
    let request = json!({
        "poseidon": inputs
            .iter()
            .map(|v| v.iter().map(uint::to_decimal).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    });
    let Some(answer) = circomlibjs("poseidon_agrees_with_circomlibjs_for_every_width", &request)
    else {
        return;
    };
    for (v, expected) in inputs
        .iter()
        .zip(answer["poseidon"].as_array().expect("list"))
    {
        assert_eq!(
            poseidon::hash(v),
            dec(as_str(expected)),
            "arity {}",
            v.len()
        );
    }
}

#[test]
fn keys_and_signatures_agree_with_circomlibjs_both_ways() {
    let test = "keys_and_signatures_agree_with_circomlibjs_both_ways";
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let keys: Vec<PrivateKey> = (0..6).map(|_| random_key(&mut rng)).collect();
    let msgs: Vec<Fr> = (0..6).map(|_| random_field(&mut rng)).collect();
    let ours: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(*m)).collect();
    let hex_keys: Vec<String> = keys.iter().map(|k| hex::encode(k.to_bytes())).collect();
    let sig_json = |m: &Fr, s: &Signature, a: &Point| {
        json!({
            "msg": uint::to_decimal(m),
            "R8": [uint::to_decimal(&s.r8.x), uint::to_decimal(&s.r8.y)],
            "S": uint::to_decimal(&s.s),
            "A": [uint::to_decimal(&a.x), uint::to_decimal(&a.y)],
        })
    };
    let mut verify = Vec::new();
    for ((k, m), s) in keys.iter().zip(&msgs).zip(&ours) {
        verify.push(sig_json(m, s, &k.public_key()));
        // Tampered: another message must not verify in circomlibjs either.
        verify.push(sig_json(&(*m + Fr::ONE), s, &k.public_key()));
    }
    let request = json!({
        "prv2pub": hex_keys,
        "sign": hex_keys.iter().zip(&msgs).map(|(k, m)| json!({"prv": k, "msg": uint::to_decimal(m)})).collect::<Vec<_>>(),
        "verify": verify,
        "blake512": ["", "00", hex::encode([0xabu8; 200])],
    });
    let Some(answer) = circomlibjs(test, &request) else {
        return;
    };
    for (i, (k, m)) in keys.iter().zip(&msgs).enumerate() {
        let a = k.public_key();
        assert_eq!(a, point_of(&answer["prv2pub"][i]), "prv2pub of key {i}");
        let theirs = Signature {
            r8: point_of(&answer["sign"][i]["R8"]),
            s: dec(as_str(&answer["sign"][i]["S"])),
        };
        assert_eq!(ours[i], theirs, "signPoseidon of key {i}");
        assert_eq!(
            eddsa::verify(*m, &theirs, &a),
            Ok(()),
            "our verifier, key {i}"
        );
        assert_eq!(
            answer["verify"][2 * i],
            Value::Bool(true),
            "circomlibjs verifies ours, key {i}"
        );
        assert_eq!(
            answer["verify"][2 * i + 1],
            Value::Bool(false),
            "circomlibjs refuses a tampered one, key {i}"
        );
    }
    for (i, data) in [vec![], vec![0u8], vec![0xab; 200]].iter().enumerate() {
        assert_eq!(
            hex::encode(eddsa::blake512_digest(data)),
            as_str(&answer["blake512"][i]),
            "BLAKE-512 of input {i}"
        );
    }
    // circomlibjs's signature verifies in our circuit.
    let theirs = Signature {
        r8: point_of(&answer["sign"][0]["R8"]),
        s: dec(as_str(&answer["sign"][0]["S"])),
    };
    mock_verify(msgs[0], &keys[0].public_key(), &theirs, true)
        .expect("circomlibjs's signature verifies in the circuit");
}

#[test]
fn gadget_bits_of_the_challenge_are_the_native_ones() {
    // Sanity of the challenge: the gadget and the native hash agree on a circomlib width-6 input.
    let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_lookup_bits(8);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let prv = key_from_hex(&"55".repeat(32));
    let a = prv.public_key();
    let sig = prv.sign(Fr::from(9));
    let values = [sig.r8.x, sig.r8.y, a.x, a.y, Fr::from(9)];
    let assigned = ctx.assign_witnesses(values);
    let c = poseidon::hash_gadget(ctx, range.gate(), &assigned);
    assert_eq!(*c.value(), eddsa::challenge(&sig.r8, &a, Fr::from(9)));
}
