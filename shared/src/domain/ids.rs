//! One macro declares every id newtype (hooks, events, deliveries, recoveries), so each is
//! parsed on the way in, shown and serialised as its text, and none repeats the boilerplate.

/// Declares an id newtype. `ulid Name, "prefix_", "field", "message"` is a ULID shown with its
/// prefix (generated, parsed and displayed here); `text Name` wraps a string whose type
/// provides `parse`. Both serialise as their text and deserialise through `parse`.
macro_rules! typed_id {
    ($(#[$meta:meta])* ulid $name:ident, $prefix:literal, $field:literal, $message:literal) => {
        $crate::domain::ids::typed_id!(@common $(#[$meta])* $name(ulid::Ulid));

        impl $name {
            pub fn generate() -> Self {
                Self(ulid::Ulid::new())
            }

            pub fn parse(s: &str) -> Result<Self, $crate::domain::validation::ValidationError> {
                s.strip_prefix($prefix)
                    .and_then(|u| ulid::Ulid::from_string(u).ok())
                    .map(Self)
                    .ok_or_else(|| $crate::domain::validation::ValidationError::new($field, $message))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
    ($(#[$meta:meta])* text $name:ident) => {
        $crate::domain::ids::typed_id!(@common $(#[$meta])* $name(String));

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
    (@common $(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name($inner);

        impl TryFrom<String> for $name {
            type Error = $crate::domain::validation::ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }
    };
}

pub(crate) use typed_id;
