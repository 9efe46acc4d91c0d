//! What the circuits' JSON inputs share: 64-bit integers written as JSON numbers or decimal
//! strings (for clients whose numbers are doubles), and parsing that names the exact place of
//! a shape error (`transfers[2].amount`).

use serde::{de::DeserializeOwned, Deserialize, Deserializer};

/// A `u64` from a JSON number or a decimal string (`#[serde(deserialize_with = ...)]`).
pub fn u64_number_or_string<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(u64),
        String(String),
    }
    match NumberOrString::deserialize(de).map_err(|_| {
        serde::de::Error::custom(
            "expected an unsigned 64-bit integer (a JSON number or a decimal string)",
        )
    })? {
        NumberOrString::Number(n) => Ok(n),
        NumberOrString::String(s) => s.parse::<u64>().map_err(|_| {
            serde::de::Error::custom(format!("{s:?} is not an unsigned 64-bit decimal integer"))
        }),
    }
}

/// `T` from JSON text, or (where, what) of the first shape error.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| (e.path().to_string(), e.inner().to_string()))
}

/// `T` from an already-parsed JSON value (a prove job's `input`), or (where, what) of the first
/// shape error.
pub fn from_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))
}
