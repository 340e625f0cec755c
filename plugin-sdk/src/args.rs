//! The user's `--encoder-arg key=value` pairs.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Display;
use std::str::FromStr;

use crate::Error;

/// The `--encoder-arg key=value` pairs, each key at most once.
///
/// Every lookup ([`get`](Self::get), [`required`](Self::required), [`parse`](Self::parse),
/// [`parse_or`](Self::parse_or)) records the key as one the plugin knows. After
/// [`Encoder::open`](crate::Encoder::open) returns, the SDK refuses any given key the plugin
/// never looked up, naming it and the keys the plugin does know; so a misspelt argument is an
/// error, never silently ignored.
#[derive(Debug)]
pub struct Args {
    pairs: Vec<(String, String)>,
    /// Every key looked up, given or not.
    known: RefCell<BTreeSet<String>>,
}

impl Args {
    /// The pairs in the order given. Refuses a key given twice.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, Error> {
        let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        for (index, (key, _)) in pairs.iter().enumerate() {
            if pairs[..index].iter().any(|(earlier, _)| earlier == key) {
                return Err(Error::argument(key, "is given twice"));
            }
        }
        Ok(Self { pairs, known: RefCell::default() })
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.known.borrow_mut().insert(key.to_string());
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which must be given.
    pub fn required(&self, key: &str) -> Result<&str, Error> {
        self.get(key).ok_or_else(|| Error::argument(key, format!("is required (--encoder-arg {key}=...)")))
    }

    /// The value of `key` parsed as a `T`, if given (`bool` takes `true` or `false`).
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(key)
            .map(|value| value.parse().map_err(|e| Error::argument(key, format!("cannot use {value:?}: {e}"))))
            .transpose()
    }

    /// The value of `key` parsed as a `T`, or `default` when not given.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// Refuses the first given key that no lookup asked for. The SDK calls it after
    /// [`Encoder::open`](crate::Encoder::open).
    pub fn check_all_known(&self) -> Result<(), Error> {
        let known = self.known.borrow();
        match self.pairs.iter().find(|(key, _)| !known.contains(key)) {
            None => Ok(()),
            Some((key, _)) if known.is_empty() => {
                Err(Error::argument(key, "is unknown: this encoder takes no arguments"))
            }
            Some((key, _)) => {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                Err(Error::argument(key, format!("is unknown: this encoder takes {}", names.join(", "))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Args {
        Args::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn lookups_find_values_and_say_what_is_wrong() {
        let args = args(&[("columns", "a,b"), ("header", "maybe"), ("level", "3")]);
        assert_eq!(args.get("columns"), Some("a,b"));
        assert_eq!(args.get("missing"), None);
        assert_eq!(args.required("columns"), Ok("a,b"));
        assert_eq!(
            args.required("nope"),
            Err(Error::InvalidArguments("`nope`: is required (--encoder-arg nope=...)".into()))
        );
        assert_eq!(args.parse::<u8>("level"), Ok(Some(3)));
        assert_eq!(args.parse_or("absent", 7u8), Ok(7));
        let err = args.parse::<bool>("header").unwrap_err();
        assert!(matches!(&err, Error::InvalidArguments(m) if m.starts_with("`header`: cannot use \"maybe\"")), "{err}");
    }

    #[test]
    fn a_key_never_looked_up_is_refused_by_name() {
        let args = args(&[("columns", "a"), ("colums", "b")]);
        args.get("columns");
        args.get("header");
        assert_eq!(
            args.check_all_known(),
            Err(Error::InvalidArguments("`colums`: is unknown: this encoder takes columns, header".into()))
        );
        let none = super::Args::new([("x", "1")]).unwrap();
        assert_eq!(
            none.check_all_known(),
            Err(Error::InvalidArguments("`x`: is unknown: this encoder takes no arguments".into()))
        );
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let err = Args::new([("a", "1"), ("b", "2"), ("a", "3")]).unwrap_err();
        assert_eq!(err, Error::InvalidArguments("`a`: is given twice".into()));
    }
}
