//! Facts stored as short words, typed: a word the code does not know, read back from the
//! store, is an error (never a silent default), so a newer or a hand-edited database cannot
//! make opswatch act on a guess.

use serde::Serialize;

/// A stored word that names none of the values its column may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} in the store")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// Implements `as_str`, `Display`, `FromStr` and decoding from a text column (an unknown word
/// is a decode error naming the column) for an enum stored as a word.
macro_rules! stored_word {
    ($ty:ty, $what:literal, { $($variant:path => $word:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::store::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($variant),)+
                    _ => Err($crate::store::UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                    }),
                }
            }
        }

        $crate::store::decode_as_word!($ty);
    };
}

/// Lets sqlx read `$ty` from a text column through its `FromStr`, on every backend.
macro_rules! decode_as_word {
    ($ty:ty) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let word = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(word.parse::<$ty>()?)
            }
        }
    };
}
pub(crate) use decode_as_word;

impl std::str::FromStr for crate::checks::CheckKind {
    type Err = crate::checks::UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

decode_as_word!(crate::checks::CheckKind);
pub(crate) use stored_word;

/// Where an up/down check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// Not probed yet.
    Unknown,
    Up,
    Down,
}

stored_word!(CheckState, "check state", {
    CheckState::Unknown => "unknown",
    CheckState::Up => "up",
    CheckState::Down => "down",
});

/// Where one delivery of an alert to one channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The channel confirmed it.
    Sent,
    /// Given up on (the channel refused it for good).
    Failed,
}

stored_word!(DeliveryState, "delivery state", {
    DeliveryState::Pending => "pending",
    DeliveryState::Sent => "sent",
    DeliveryState::Failed => "failed",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_errors() {
        for s in [CheckState::Unknown, CheckState::Up, CheckState::Down] {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        for s in [
            DeliveryState::Pending,
            DeliveryState::Sent,
            DeliveryState::Failed,
        ] {
            assert_eq!(s.to_string().parse(), Ok(s));
        }
        assert_eq!(
            "sideways".parse::<CheckState>(),
            Err(UnknownValue {
                what: "check state",
                value: "sideways".to_owned()
            })
        );
    }
}
