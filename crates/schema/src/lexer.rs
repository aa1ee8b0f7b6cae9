//! The lexer: schema text → tokens with byte spans. It follows SpiceDB's lexer so that the same
//! texts are accepted: a newline after an identifier, keyword, `}`, `)` or `*` ends a statement
//! (a "synthetic semicolon"), other newlines are insignificant, and the CEL operators used in
//! caveat bodies are tokens of their own.

use crate::source::Span;

/// The kind of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TokenKind {
    /// An unrecognised character, or an unterminated string or comment.
    Error,
    /// A newline that ends a statement.
    SyntheticSemicolon,
    Eof,
    Whitespace,
    SinglelineComment,
    MultilineComment,
    /// A newline that does not end a statement.
    Newline,
    /// `definition`, `caveat`, `relation`, `permission`, `nil`, `with`.
    Keyword,
    Identifier,
    LeftBrace,
    RightBrace,
    LeftParen,
    RightParen,
    Pipe,
    Plus,
    Minus,
    And,
    Div,
    Equals,
    Colon,
    Semicolon,
    RightArrow,
    Hash,
    Ellipsis,
    Star,
    QuestionMark,
    ConditionalOr,
    ConditionalAnd,
    ExclamationPoint,
    LeftBracket,
    RightBracket,
    Period,
    Comma,
    Percent,
    LessThan,
    GreaterThan,
    LessThanOrEqual,
    GreaterThanOrEqual,
    EqualEqual,
    NotEqual,
    /// `"..."`, `'...'`, `"""..."""` or `'''...'''`.
    String,
}

impl TokenKind {
    /// Whether the parser skips this token (comments are collected separately).
    pub(crate) fn is_trivia(self) -> bool {
        matches!(
            self,
            TokenKind::Whitespace
                | TokenKind::Newline
                | TokenKind::SinglelineComment
                | TokenKind::MultilineComment
        )
    }

    /// Whether a newline after this token ends the statement.
    fn ends_statement_at_newline(self) -> bool {
        matches!(
            self,
            TokenKind::Identifier
                | TokenKind::Keyword
                | TokenKind::RightBrace
                | TokenKind::RightParen
                | TokenKind::Star
        )
    }
}

/// Words the lexer always treats as keywords. Others (`use`, `import`, `partial`, `self`,
/// `expiration`, `and`, `any`, `all`) are keywords only where the grammar expects them.
pub(crate) const KEYWORDS: &[&str] = &[
    "definition",
    "caveat",
    "relation",
    "permission",
    "nil",
    "with",
];

/// One token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Span,
}

/// Splits `text` into tokens, trivia included, ending with one `Eof` token.
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        text,
        pos: 0,
        tokens: Vec::new(),
        last_significant: TokenKind::Eof,
    };
    lexer.run();
    lexer.tokens
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    last_significant: TokenKind,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.text[self.pos..].starts_with(prefix)
    }

    fn emit(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            span: Span::new(start, self.pos),
        });
        if !kind.is_trivia() {
            self.last_significant = kind;
        }
    }

    fn run(&mut self) {
        while let Some(ch) = self.peek() {
            let start = self.pos;
            self.pos += ch.len_utf8();
            let two = |lexer: &mut Self, second: char, double: TokenKind, single: TokenKind| {
                if lexer.peek() == Some(second) {
                    lexer.pos += second.len_utf8();
                    double
                } else {
                    single
                }
            };
            let kind = match ch {
                '{' => TokenKind::LeftBrace,
                '}' => TokenKind::RightBrace,
                '(' => TokenKind::LeftParen,
                ')' => TokenKind::RightParen,
                '+' => TokenKind::Plus,
                '|' => two(self, '|', TokenKind::ConditionalOr, TokenKind::Pipe),
                '&' => two(self, '&', TokenKind::ConditionalAnd, TokenKind::And),
                '?' => TokenKind::QuestionMark,
                '!' => two(self, '=', TokenKind::NotEqual, TokenKind::ExclamationPoint),
                '[' => TokenKind::LeftBracket,
                ']' => TokenKind::RightBracket,
                '%' => TokenKind::Percent,
                '<' => two(self, '=', TokenKind::LessThanOrEqual, TokenKind::LessThan),
                '>' => two(
                    self,
                    '=',
                    TokenKind::GreaterThanOrEqual,
                    TokenKind::GreaterThan,
                ),
                ',' => TokenKind::Comma,
                '=' => two(self, '=', TokenKind::EqualEqual, TokenKind::Equals),
                ':' => TokenKind::Colon,
                ';' => TokenKind::Semicolon,
                '#' => TokenKind::Hash,
                '*' => TokenKind::Star,
                '-' => two(self, '>', TokenKind::RightArrow, TokenKind::Minus),
                '.' => {
                    if self.starts_with("..") {
                        self.pos += 2;
                        TokenKind::Ellipsis
                    } else {
                        TokenKind::Period
                    }
                }
                ' ' | '\t' => TokenKind::Whitespace,
                '\r' | '\n' => {
                    if self.last_significant.ends_statement_at_newline() {
                        TokenKind::SyntheticSemicolon
                    } else {
                        TokenKind::Newline
                    }
                }
                '\'' | '"' => {
                    self.pos = start;
                    self.string_literal()
                }
                '/' if self.starts_with("/") => {
                    while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                        self.pos += self.peek().map_or(1, char::len_utf8);
                    }
                    TokenKind::SinglelineComment
                }
                '/' if self.starts_with("*") => {
                    self.pos += 1;
                    match self.text[self.pos..].find("*/") {
                        Some(idx) => {
                            self.pos += idx + 2;
                            TokenKind::MultilineComment
                        }
                        None => {
                            self.pos = self.text.len();
                            TokenKind::Error
                        }
                    }
                }
                '/' => TokenKind::Div,
                c if is_alphanumeric(c) => {
                    while self.peek().is_some_and(is_alphanumeric) {
                        self.pos += self.peek().map_or(1, char::len_utf8);
                    }
                    if KEYWORDS.contains(&&self.text[start..self.pos]) {
                        TokenKind::Keyword
                    } else {
                        TokenKind::Identifier
                    }
                }
                _ => TokenKind::Error,
            };
            self.emit(kind, start);
        }
        let end = self.text.len();
        self.tokens.push(Token {
            kind: TokenKind::Eof,
            span: Span::new(end, end),
        });
    }

    /// Lexes a string literal starting at `self.pos`; an unterminated one is an `Error` token.
    fn string_literal(&mut self) -> TokenKind {
        let (opener, terminator, multiline) = if self.starts_with("\"\"\"") {
            ("\"\"\"", "\"\"\"", true)
        } else if self.starts_with("'''") {
            ("'''", "'''", true)
        } else if self.starts_with("\"") {
            ("\"", "\"", false)
        } else {
            ("'", "'", false)
        };
        self.pos += opener.len();
        loop {
            if self.starts_with(terminator) {
                self.pos += terminator.len();
                return TokenKind::String;
            }
            match self.peek() {
                None => return TokenKind::Error,
                Some('\n' | '\r') if !multiline => return TokenKind::Error,
                Some('\\') => {
                    // An escape: skip the next character too, so `\"` does not end the string.
                    self.pos += 1;
                    if let Some(next) = self.peek() {
                        self.pos += next.len_utf8();
                    }
                }
                Some(c) => self.pos += c.len_utf8(),
            }
        }
    }
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        lex(text)
            .into_iter()
            .map(|t| t.kind)
            .filter(|k| !k.is_trivia())
            .collect()
    }

    #[test]
    fn newline_after_name_ends_the_statement() {
        use TokenKind::*;
        assert_eq!(
            kinds("relation a: b |\n c\n"),
            [
                Keyword,
                Identifier,
                Colon,
                Identifier,
                Pipe,
                Identifier,
                SyntheticSemicolon,
                Eof
            ]
        );
    }

    #[test]
    fn operators_and_cel_tokens() {
        use TokenKind::*;
        assert_eq!(
            kinds("a->b ... . || && != <= >= == ? % [ ] , !"),
            [
                Identifier,
                RightArrow,
                Identifier,
                Ellipsis,
                Period,
                ConditionalOr,
                ConditionalAnd,
                NotEqual,
                LessThanOrEqual,
                GreaterThanOrEqual,
                EqualEqual,
                QuestionMark,
                Percent,
                LeftBracket,
                RightBracket,
                Comma,
                ExclamationPoint,
                Eof
            ]
        );
    }

    #[test]
    fn strings_comments_and_errors() {
        use TokenKind::*;
        assert_eq!(
            kinds(
                r#""a}b" 'c\'d' """x
y""""#
            ),
            [String, String, String, Eof]
        );
        assert_eq!(kinds("\"open\nx"), [Error, Identifier, Eof]);
        assert_eq!(kinds("/* never closed"), [Error, Eof]);
        assert_eq!(
            kinds("a // c\n/* d */ b"),
            [Identifier, SyntheticSemicolon, Identifier, Eof]
        );
        assert_eq!(kinds("a $ b"), [Identifier, Error, Identifier, Eof]);
    }

    #[test]
    fn keywords_and_unicode_names() {
        use TokenKind::*;
        assert_eq!(
            kinds("definition nil with use café"),
            [Keyword, Keyword, Keyword, Identifier, Identifier, Eof]
        );
        let tokens = lex("é1");
        assert_eq!(tokens[0].span, Span::new(0, 3));
    }
}
