//! Free-text search (`q`): parsing, and matching collections in memory.
//!
//! Comma-separated parts match when any of them does (`q=EO,Earth
//! Observation`), and a plain part is one phrase, so spaces inside it have
//! no special meaning. A part that uses the advanced syntax is parsed as an
//! expression: quoted phrases, `AND`, `OR`, parentheses, and `+term` (must
//! match) or `-term` (must not match); terms side by side without an
//! operator match when any of them does. Matching is by whole words,
//! ignoring case, on the id, title, description and keywords.

use serde_json::Value;

use crate::error::Error;

/// Conformance classes of free-text search.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0-rc.1/item-search#free-text",
    "https://api.stacspec.org/v1.0.0-rc.1/item-search#advanced-free-text",
    "https://api.stacspec.org/v1.0.0-rc.1/ogcapi-features#free-text",
    "https://api.stacspec.org/v1.0.0-rc.1/ogcapi-features#advanced-free-text",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#free-text",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#advanced-free-text",
];

/// Maximum number of terms in one query.
const MAX_TERMS: usize = 64;

/// A parsed free-text query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextQuery {
    /// A word or phrase, as lower-case words.
    Phrase(Vec<String>),
    /// All of them.
    And(Vec<TextQuery>),
    /// Any of them.
    Or(Vec<TextQuery>),
    /// Not this.
    Not(Box<TextQuery>),
}

/// Splits text into lower-case words: runs of letters and digits, as the
/// stores' full-text indexes split it.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Reads the GET form: comma-separated parts.
pub fn from_query(text: &str) -> Result<TextQuery, Error> {
    let parts = split_top_level(text);
    parse_parts(&parts, text)
}

/// Reads the POST form: a string as in GET, or an array of parts.
pub fn from_body(value: &Value) -> Result<TextQuery, Error> {
    match value {
        Value::String(text) => from_query(text),
        Value::Array(items) => {
            let parts = items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::parameter("q", value, "expected a string or an array of strings"))?;
            parse_parts(&parts, &value.to_string())
        }
        _ => Err(Error::parameter(
            "q",
            value,
            "expected a string or an array of strings",
        )),
    }
}

fn parse_parts(parts: &[String], original: &str) -> Result<TextQuery, Error> {
    let mut alternatives = Vec::new();
    for part in parts {
        if let Some(query) = parse_part(part, original)? {
            alternatives.push(query);
        }
    }
    let count = alternatives.iter().map(count_terms).sum::<usize>();
    if count > MAX_TERMS {
        return Err(Error::parameter(
            "q",
            original,
            format!("at most {MAX_TERMS} terms are accepted"),
        ));
    }
    match alternatives.len() {
        0 => Err(Error::parameter("q", original, "expected at least one word")),
        1 => Ok(alternatives.remove(0)),
        _ => Ok(TextQuery::Or(alternatives)),
    }
}

fn count_terms(query: &TextQuery) -> usize {
    match query {
        TextQuery::Phrase(_) => 1,
        TextQuery::Not(inner) => count_terms(inner),
        TextQuery::And(parts) | TextQuery::Or(parts) => parts.iter().map(count_terms).sum(),
    }
}

/// Splits on commas outside quotes and parentheses.
fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Phrase(String),
    Required,
    Excluded,
    And,
    Or,
    Open,
    Close,
}

fn tokenize(part: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = part.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' => {
                chars.next();
                let phrase: String = chars.by_ref().take_while(|c| *c != '"').collect();
                tokens.push(Token::Phrase(phrase));
            }
            '(' | ')' => {
                chars.next();
                tokens.push(if c == '(' { Token::Open } else { Token::Close });
            }
            // At the start of a term; inside a word, as in `old-town`, a hyphen is part of it.
            '+' | '-' => {
                chars.next();
                tokens.push(if c == '+' {
                    Token::Required
                } else {
                    Token::Excluded
                });
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '"' | '(' | ')') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(match word.as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    _ => Token::Word(word),
                });
            }
        }
    }
    tokens
}

/// Parses one comma-separated part; `None` when it has no words.
fn parse_part(part: &str, original: &str) -> Result<Option<TextQuery>, Error> {
    let tokens = tokenize(part);
    let advanced = tokens.iter().any(|t| !matches!(t, Token::Word(_)));
    if !advanced {
        let words = words(part);
        return Ok((!words.is_empty()).then_some(TextQuery::Phrase(words)));
    }
    let mut parser = Parser {
        tokens: &tokens,
        position: 0,
        original,
    };
    let query = parser.or()?;
    if parser.position != tokens.len() {
        return Err(Error::parameter(
            "q",
            original,
            "unbalanced parentheses or a misplaced operator",
        ));
    }
    Ok(query)
}

struct Parser<'a> {
    tokens: &'a [Token],
    position: usize,
    original: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn invalid(&self, reason: &str) -> Error {
        Error::parameter("q", self.original, reason)
    }

    /// `a OR b`, and terms side by side, which also mean OR; `+` and `-`
    /// terms among them are required and excluded.
    fn or(&mut self) -> Result<Option<TextQuery>, Error> {
        let (mut any, mut required, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                Some(Token::Or) => {
                    self.position += 1;
                    continue;
                }
                Some(Token::Required) => {
                    self.position += 1;
                    required.extend(self.and()?);
                }
                Some(Token::Excluded) => {
                    self.position += 1;
                    excluded.extend(self.and()?);
                }
                _ => any.extend(self.and()?),
            }
        }
        let mut all: Vec<TextQuery> = required;
        match any.len() {
            0 => {}
            1 => all.push(any.remove(0)),
            _ => all.push(TextQuery::Or(any)),
        }
        if all.is_empty() && !excluded.is_empty() {
            return Err(self.invalid("a query needs at least one term that is not excluded with '-'"));
        }
        all.extend(excluded.into_iter().map(|e| TextQuery::Not(Box::new(e))));
        Ok(match all.len() {
            0 => None,
            1 => Some(all.remove(0)),
            _ => Some(TextQuery::And(all)),
        })
    }

    /// `a AND b AND c`.
    fn and(&mut self) -> Result<Option<TextQuery>, Error> {
        let mut parts: Vec<TextQuery> = self.primary()?.into_iter().collect();
        while self.peek() == Some(&Token::And) {
            self.position += 1;
            match self.primary()? {
                Some(part) => parts.push(part),
                None => return Err(self.invalid("AND needs a term on both sides")),
            }
        }
        Ok(match parts.len() {
            0 => None,
            1 => Some(parts.remove(0)),
            _ => Some(TextQuery::And(parts)),
        })
    }

    fn primary(&mut self) -> Result<Option<TextQuery>, Error> {
        let token = self.peek().cloned();
        match token {
            Some(Token::Word(text) | Token::Phrase(text)) => {
                self.position += 1;
                let words = words(&text);
                Ok((!words.is_empty()).then_some(TextQuery::Phrase(words)))
            }
            Some(Token::Open) => {
                self.position += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(self.invalid("a '(' has no matching ')'"));
                }
                self.position += 1;
                Ok(inner)
            }
            Some(Token::Required | Token::Excluded) => {
                self.position += 1;
                self.primary()
            }
            _ => Ok(None),
        }
    }
}

impl TextQuery {
    /// Tells whether a text matches, by whole words.
    pub fn matches(&self, words: &[String]) -> bool {
        match self {
            TextQuery::Phrase(phrase) => {
                !phrase.is_empty()
                    && words
                        .windows(phrase.len())
                        .any(|window| window == phrase.as_slice())
            }
            TextQuery::And(parts) => parts.iter().all(|p| p.matches(words)),
            TextQuery::Or(parts) => parts.iter().any(|p| p.matches(words)),
            TextQuery::Not(inner) => !inner.matches(words),
        }
    }

    /// Describes the query in a stable text form, for page token fingerprints.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(text: &str) -> TextQuery {
        TextQuery::Phrase(words(text))
    }

    #[test]
    fn commas_separate_alternatives() {
        let query = from_query("EO,Earth Observation").unwrap();
        assert_eq!(
            query,
            TextQuery::Or(vec![phrase("eo"), phrase("earth observation")])
        );
    }

    #[test]
    fn advanced_syntax_parses() {
        let query = from_query("+drone \"old town\" -oblique").unwrap();
        assert_eq!(
            query,
            TextQuery::And(vec![
                phrase("drone"),
                phrase("old town"),
                TextQuery::Not(Box::new(phrase("oblique")))
            ])
        );
        let query = from_query("(lidar OR thermal) AND tavira").unwrap();
        assert_eq!(
            query,
            TextQuery::And(vec![
                TextQuery::Or(vec![phrase("lidar"), phrase("thermal")]),
                phrase("tavira")
            ])
        );
        assert!(from_query("(lidar").is_err());
        assert!(from_query("-only").is_err());
    }

    #[test]
    fn matching_is_by_whole_words() {
        let text = words("Tavira old-town orthomosaic, Drone survey");
        assert!(phrase("old town").matches(&text));
        assert!(phrase("DRONE").matches(&text));
        assert!(!phrase("tav").matches(&text));
        assert!(from_query("+drone -lidar").unwrap().matches(&text));
        assert!(!from_query("+drone -survey").unwrap().matches(&text));
        assert!(from_query("old-town").unwrap().matches(&text));
    }
}
