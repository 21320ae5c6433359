//! The subset of Python literals that `.npy` headers are written in: dicts, tuples, lists,
//! strings in either quote (with an optional `u`/`b` prefix), non-negative integers (with
//! Python 2's optional `L` suffix), `True`, `False` and `None`, with any whitespace between
//! tokens. Nesting is limited to [`MAX_NESTING`] levels.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

/// Nesting depth limit for the header literal, so a header of `((((…` cannot overflow the
/// stack.
const MAX_NESTING: usize = 16;

/// A value of the Python literal subset used by `.npy` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Literal {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(String, Literal)>),
}

impl Literal {
    pub(super) fn kind_with_article(&self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Int(_) => "an integer",
            Literal::Bool(_) => "a boolean",
            Literal::None => "None",
            Literal::Tuple(_) => "a tuple",
            Literal::List(_) => "a list",
            Literal::Dict(_) => "a dict",
        }
    }
}

/// A parse failure at byte `offset` of the header text.
#[derive(Debug)]
pub(super) struct ParseError {
    pub(super) offset: usize,
    pub(super) message: String,
}

/// Recursive-descent parser for [`Literal`]s over the header text.
pub(super) struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Parser {
            text: text.as_bytes(),
            pos: 0,
        }
    }

    /// Parses the whole header: one literal, then only whitespace (NumPy's padding).
    pub(super) fn header(mut self) -> Result<Literal, ParseError> {
        let value = self.value(0)?;
        self.skip_whitespace();
        match self.peek() {
            None => Ok(value),
            Some(_) => Err(self.error("unexpected text after the header dict")),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        match self.peek() {
            None => self.error(format!("header text ends where {wanted} was expected")),
            Some(b) => self.error(format!(
                "found {:?} where {wanted} was expected",
                char::from(b)
            )),
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, ParseError> {
        if depth > MAX_NESTING {
            return Err(self.error("header literal is nested too deeply"));
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.dict(depth),
            Some(b'(') => self.sequence(b')', depth).map(Literal::Tuple),
            Some(b'[') => self.sequence(b']', depth).map(Literal::List),
            Some(b'\'' | b'"') => self.string().map(Literal::Str),
            Some(b'0'..=b'9') => self.int().map(Literal::Int),
            Some(b'-') => Err(self.error("negative numbers are not valid in a .npy header")),
            Some(b) if b.is_ascii_alphabetic() => self.word(),
            _ => Err(self.unexpected("a value")),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Literal, ParseError> {
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Literal::Dict(entries));
            }
            let key = match self.value(depth + 1)? {
                Literal::Str(key) => key,
                other => {
                    return Err(self.error(format!(
                        "dict key is {}, expected a string",
                        other.kind_with_article()
                    )));
                }
            };
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':'"));
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    /// A tuple or list; the opening bracket is at `self.pos`. A trailing comma is allowed.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Literal>, ParseError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {}
                _ => {
                    let wanted = format!("',' or '{}'", char::from(close));
                    return Err(self.unexpected(&wanted));
                }
            }
        }
    }

    /// A quoted string; the quote is at `self.pos`. Handles the escapes `\\`, `\'`, `\"`,
    /// `\n`, `\t`, `\r` and `\0`; any other backslash is kept literally, as Python does.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let Some(quote) = self.peek() else {
            return Err(self.unexpected("a string"));
        };
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(ParseError {
                    offset: start,
                    message: "string is not closed".into(),
                });
            };
            self.pos += 1;
            if b == quote {
                break;
            }
            if b != b'\\' {
                bytes.push(b);
                continue;
            }
            let escaped = match self.peek() {
                Some(b'\\') => b'\\',
                Some(b'\'') => b'\'',
                Some(b'"') => b'"',
                Some(b'n') => b'\n',
                Some(b't') => b'\t',
                Some(b'r') => b'\r',
                Some(b'0') => 0,
                _ => {
                    bytes.push(b'\\');
                    continue;
                }
            };
            bytes.push(escaped);
            self.pos += 1;
        }
        // Only ASCII bytes were split off or replaced, so multi-byte characters are intact.
        String::from_utf8(bytes).map_err(|_| ParseError {
            offset: start,
            message: "string is not valid UTF-8".into(),
        })
    }

    /// A non-negative decimal integer, with an optional Python 2 `L` suffix.
    fn int(&mut self) -> Result<u64, ParseError> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| ParseError {
                    offset: start,
                    message: "integer does not fit in 64 bits".into(),
                })?;
            self.pos += 1;
        }
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        if self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
        {
            return Err(self.unexpected("the end of an integer"));
        }
        Ok(value)
    }

    /// `True`, `False`, `None`, or a string with a `u`/`b` prefix.
    fn word(&mut self) -> Result<Literal, ParseError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        let word = self.text.get(start..self.pos).unwrap_or_default();
        match word {
            b"True" => Ok(Literal::Bool(true)),
            b"False" => Ok(Literal::Bool(false)),
            b"None" => Ok(Literal::None),
            b"u" | b"U" | b"b" | b"B" if matches!(self.peek(), Some(b'\'' | b'"')) => {
                self.string().map(Literal::Str)
            }
            _ => Err(ParseError {
                offset: start,
                message: format!(
                    "unknown name {:?} (expected True, False or None)",
                    String::from_utf8_lossy(word)
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Literal, ParseError> {
        Parser::new(text).header()
    }

    #[test]
    fn parses_numpy_header() {
        let literal =
            parse("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 384), }   \n").unwrap();
        assert_eq!(
            literal,
            Literal::Dict(vec![
                ("descr".into(), Literal::Str("<f4".into())),
                ("fortran_order".into(), Literal::Bool(false)),
                (
                    "shape".into(),
                    Literal::Tuple(vec![Literal::Int(1000), Literal::Int(384)])
                ),
            ])
        );
    }

    #[test]
    fn parses_odd_spacing_quotes_and_python2_longs() {
        let literal =
            parse("{ \"shape\" :(7L ,3L) ,\n\t'fortran_order':False,u'descr' : \"<f8\"}\n")
                .unwrap();
        let Literal::Dict(entries) = literal else {
            panic!("not a dict")
        };
        assert!(entries.contains(&(
            "shape".into(),
            Literal::Tuple(vec![Literal::Int(7), Literal::Int(3)])
        )));
        assert!(entries.contains(&("descr".into(), Literal::Str("<f8".into()))));
    }

    #[test]
    fn one_tuple_empty_tuple_and_nested_lists() {
        assert_eq!(
            parse("(5,)").unwrap(),
            Literal::Tuple(vec![Literal::Int(5)])
        );
        assert_eq!(parse("()").unwrap(), Literal::Tuple(vec![]));
        assert_eq!(
            parse("[('a', '<f4'), None]").unwrap(),
            Literal::List(vec![
                Literal::Tuple(vec![Literal::Str("a".into()), Literal::Str("<f4".into())]),
                Literal::None
            ])
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            parse(r"'a\'b\\c\q'").unwrap(),
            Literal::Str("a'b\\c\\q".into())
        );
    }

    #[test]
    fn errors_carry_offsets() {
        let e = parse("{'shape': (1, 2), 'x': 1.5}").unwrap_err();
        assert_eq!(e.offset, 24);
        let e = parse("{'shape' (1, 2)}").unwrap_err();
        assert_eq!(e.offset, 9);
        assert!(e.message.contains("':'"), "{}", e.message);
        let e = parse("{'a': 1} x").unwrap_err();
        assert_eq!(e.offset, 9);
        let e = parse("{'a': 'open").unwrap_err();
        assert_eq!(e.offset, 6);
        let e = parse("99999999999999999999999").unwrap_err();
        assert!(e.message.contains("64 bits"));
        let e = parse("{'a': Maybe}").unwrap_err();
        assert!(e.message.contains("Maybe"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "(".repeat(100_000);
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nested"));
    }
}
