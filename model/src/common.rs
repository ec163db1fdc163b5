//! Shared building blocks of the records: string enumerations that keep unknown values,
//! ID newtypes, and the map types used for open-ended fields.

use std::collections::BTreeMap;

/// Fields a record does not know, kept verbatim so a decode/encode round trip loses nothing
/// (blocks stead does not act on yet, fields of newer Nomad versions).
pub type Extra = BTreeMap<String, serde_json::Value>;

/// `Meta`, `Env` and similar string-to-string maps.
pub type StringMap = BTreeMap<String, String>;

/// An open map whose contents belong to someone else (driver `Config`, scaling `Policy`).
pub type OpaqueMap = BTreeMap<String, serde_json::Value>;

/// Declares an enumeration that is a plain JSON string with Nomad's exact spelling.
///
/// Unknown strings decode to `Other(s)` instead of failing, so the decoder never rejects a
/// record for a value added by a newer Nomad and `Job::validate` can report the bad value
/// with its path. `Default` is `Other("")`: "not set".
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of stead does not know (or the empty string).
            Other(String),
        }

        impl $name {
            /// Every value stead knows, in Nomad's spelling.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }

            /// `Other("")`: the field was not given.
            pub fn is_unset(&self) -> bool {
                matches!(self, Self::Other(s) if s.is_empty())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::from(s.as_ref()))
            }
        }
    };
}
pub(crate) use string_enum;

/// Declares an ID newtype: a plain JSON string on the wire, a distinct type in Rust.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_newtype!(
    /// A job's ID (may contain `/` for periodic and dispatched children).
    JobId
);
id_newtype!(
    /// An allocation's UUID.
    AllocId
);
id_newtype!(
    /// An evaluation's UUID.
    EvalId
);
id_newtype!(
    /// A deployment's UUID.
    DeploymentId
);
id_newtype!(
    /// A node's UUID.
    NodeId
);
