//! Masking of customer personal data before anything reaches the index.
//!
//! Past tickets (and sometimes help pages pasted from tickets) contain customers' email
//! addresses, phone numbers and payment card numbers. None of that may be stored in the
//! knowledge index or shown back to another customer, so it is replaced with placeholders:
//! `[email]`, `[phone]` and `[card]`.
//!
//! Support docs are also full of numbers that are *not* personal data: error codes (`TH-4012`,
//! `E1042`, `HTTP 429`), dates, times, prices, version numbers, IP addresses and order or
//! invoice numbers. The rules here are deliberately conservative so that those survive intact:
//!
//! - **Emails**: `local@domain.tld` (ASCII). Retina image names such as `icon@2x.png` are kept.
//! - **Cards**: 13–19 digits that pass the Luhn check, either contiguous or grouped with one
//!   consistent separator (space or dash) where the first group has 4 digits and the others
//!   3–6 (`4111 1111 1111 1111`, `3782-822463-10005`). Cards are checked before phones.
//! - **Phones**: international numbers starting with `+` (8–15 digits); North American numbers
//!   such as `(555) 123-4567`, `555-123-4567`, `555.123.4567`, `+1 555 123 4567`; national
//!   numbers with a leading trunk `0` such as `020 7946 0958`; and other 10–13 digit numbers
//!   written in groups of 3–5 digits with one consistent space or dash separator. Plain runs of
//!   digits without a `+` are never treated as phone numbers (they are usually ids or
//!   timestamps).
//!
//! A number glued to letters (`INV-5551234567`, `v2.555.123.4567`), to a currency sign or to
//! more digits is never masked. Without a leading `+`, a number that is only part of a longer
//! run of digit groups (`4111 1111 1111 1112`, a Luhn-invalid card) is not taken for a phone.

use regex::Regex;
use std::sync::OnceLock;

/// Placeholder for a masked email address.
pub const EMAIL_PLACEHOLDER: &str = "[email]";
/// Placeholder for a masked phone number.
pub const PHONE_PLACEHOLDER: &str = "[phone]";
/// Placeholder for a masked payment card number.
pub const CARD_PLACEHOLDER: &str = "[card]";

/// Replaces email addresses, payment card numbers and phone numbers in `text` with
/// `[email]`, `[card]` and `[phone]`. Everything else is returned unchanged.
pub fn mask_pii(text: &str) -> String {
    let masked = mask_emails(text);
    let masked = mask_with(&masked, CARD_PLACEHOLDER, match_card_at);
    mask_with(&masked, PHONE_PLACEHOLDER, match_phone_at)
}

fn email_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
        )
        .ok()
    })
    .as_ref()
}

fn mask_emails(text: &str) -> String {
    let Some(re) = email_regex() else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in re.find_iter(text) {
        let candidate = m.as_str();
        // The local part must not start with a dot (".john@x.com" keeps the dot as punctuation).
        let lead = candidate.len() - candidate.trim_start_matches('.').len();
        let start = m.start() + lead;
        let candidate = &text[start..m.end()];
        if is_retina_asset(candidate) || !email_ends_cleanly(text, m.end()) {
            continue;
        }
        out.push_str(&text[last..start]);
        out.push_str(EMAIL_PLACEHOLDER);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// `logo@2x.png`, `icon@3x.webp`: image file names, not addresses.
fn is_retina_asset(candidate: &str) -> bool {
    let Some((_, domain)) = candidate.rsplit_once('@') else {
        return false;
    };
    let Some((label, _)) = domain.split_once('.') else {
        return false;
    };
    let lower = label.to_ascii_lowercase();
    domain.matches('.').count() == 1
        && lower.len() >= 2
        && lower.ends_with('x')
        && lower[..lower.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// The top-level domain must not run straight into more letters or digits (the regex stops at
/// 24 letters; anything longer is not an address).
fn email_ends_cleanly(text: &str, end: usize) -> bool {
    !matches!(text[end..].chars().next(), Some(c) if c.is_alphanumeric() || c == '_')
}

/// Scans `text` left to right; wherever `matcher` recognises a span starting at a position,
/// that span is replaced with `placeholder`.
fn mask_with(text: &str, placeholder: &str, matcher: fn(&str, usize) -> Option<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut pos = 0;
    let bytes = text.as_bytes();
    while pos < bytes.len() {
        let b = bytes[pos];
        if (b.is_ascii_digit() || b == b'+' || b == b'(') && starts_cleanly(text, pos) {
            if let Some(end) = matcher(text, pos) {
                out.push_str(&text[last..pos]);
                out.push_str(placeholder);
                last = end;
                pos = end;
                continue;
            }
        }
        pos += 1;
        while pos < bytes.len() && !text.is_char_boundary(pos) {
            pos += 1;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Characters that glue a number to what comes before or after it (`INV-…`, `v2.…`, `1,200`).
fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '.' | '/' | ',' | '_' | '#' | '@')
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '₹' | '¢')
}

/// True when a number may start at `pos`: it is not glued to a word, another number or a price.
fn starts_cleanly(text: &str, pos: usize) -> bool {
    let mut before = text[..pos].chars().rev();
    match before.next() {
        None => true,
        Some(c) if c.is_alphanumeric() || c == '_' || c == '+' || is_currency(c) => false,
        Some(c) if is_joiner(c) => match before.next() {
            Some(p) => !(p.is_alphanumeric() || p == '_'),
            None => true,
        },
        Some(_) => true,
    }
}

/// True when a number may end at `end`: it does not run on into a word or another number.
fn ends_cleanly(text: &str, end: usize) -> bool {
    let mut after = text[end..].chars();
    match after.next() {
        None => true,
        Some(c) if c.is_alphanumeric() || c == '_' || c == '%' => false,
        Some(c) if is_joiner(c) || c == '(' => match after.next() {
            Some(n) => !(n.is_alphanumeric() || n == '_'),
            None => true,
        },
        Some(_) => true,
    }
}

/// A separator followed by a digit comes right after `end`: the run of numbers goes on.
fn continues_after(text: &str, end: usize) -> bool {
    let b = text.as_bytes();
    end + 1 < b.len() && matches!(b[end], b' ' | b'-' | b'.') && b[end + 1].is_ascii_digit()
}

/// A digit followed by a separator comes right before `pos`: the run of numbers started earlier.
fn continues_before(text: &str, pos: usize) -> bool {
    let b = text.as_bytes();
    pos >= 2 && matches!(b[pos - 1], b' ' | b'-' | b'.') && b[pos - 2].is_ascii_digit()
}

/// One run of digits inside a candidate number, with what came before it.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Byte offset just past the group (past the `)` for a parenthesised group).
    end: usize,
    digits: usize,
    first_digit: u8,
    parenthesised: bool,
    /// Separator between the previous group and this one (`None` for the first group, or when
    /// the groups touch, as in `(555)123`).
    sep: Option<u8>,
}

/// Reads digit groups starting at `pos`: `123`, `(123)`, separated by at most one of
/// `allowed_seps`. Stops after `max_digits` digits so a long run of numbers costs little.
fn read_groups(text: &str, pos: usize, allowed_seps: &[u8], parens: bool, max_digits: usize) -> Vec<Group> {
    let bytes = text.as_bytes();
    let mut groups: Vec<Group> = Vec::new();
    let mut i = pos;
    let mut total = 0;
    loop {
        let mut sep = None;
        if !groups.is_empty() && i < bytes.len() && allowed_seps.contains(&bytes[i]) {
            sep = Some(bytes[i]);
            i += 1;
        }
        let paren = parens && i < bytes.len() && bytes[i] == b'(';
        let digits_start = if paren { i + 1 } else { i };
        let mut j = digits_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        let digits = j - digits_start;
        if digits == 0 {
            break;
        }
        let mut end = j;
        if paren {
            if j < bytes.len() && bytes[j] == b')' {
                end = j + 1;
            } else {
                break;
            }
        }
        // Two plain digit groups can only be told apart by a separator.
        if sep.is_none() && !groups.is_empty() {
            let prev_paren = groups.last().is_some_and(|g| g.parenthesised);
            if !paren && !prev_paren {
                break;
            }
        }
        groups.push(Group { end, digits, first_digit: bytes[digits_start], parenthesised: paren, sep });
        total += digits;
        i = end;
        if total > max_digits {
            break;
        }
    }
    groups
}

fn digits_of(text: &str, start: usize, end: usize) -> Vec<u8> {
    text.as_bytes()[start..end].iter().filter(|b| b.is_ascii_digit()).map(|b| b - b'0').collect()
}

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// A payment card number starting at `pos`; returns the end of the longest valid one.
fn match_card_at(text: &str, pos: usize) -> Option<usize> {
    if !text.as_bytes()[pos].is_ascii_digit() {
        return None;
    }
    let groups = read_groups(text, pos, b" -", false, 19);
    for n in (1..=groups.len()).rev() {
        let used = &groups[..n];
        let digits: usize = used.iter().map(|g| g.digits).sum();
        if !(13..=19).contains(&digits) || !card_grouping_ok(used) {
            continue;
        }
        let end = used[n - 1].end;
        if ends_cleanly(text, end) && luhn_valid(&digits_of(text, pos, end)) {
            return Some(end);
        }
    }
    None
}

fn card_grouping_ok(groups: &[Group]) -> bool {
    if groups.len() == 1 {
        return true;
    }
    let sep = groups[1].sep;
    groups[0].digits == 4 && groups[1..].iter().all(|g| g.sep.is_some() && g.sep == sep && (3..=6).contains(&g.digits))
}

/// A phone number starting at `pos`; returns the end of the longest plausible one.
fn match_phone_at(text: &str, pos: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let plus = bytes[pos] == b'+';
    let start = if plus { pos + 1 } else { pos };
    if start >= bytes.len() || !(bytes[start].is_ascii_digit() || (!plus && bytes[start] == b'(')) {
        return None;
    }
    // Without a `+`, a number that is one piece of a longer run of digit groups (a card that
    // failed the Luhn check, a list of codes) is not taken for a phone number.
    if !plus && continues_before(text, pos) {
        return None;
    }
    let groups = read_groups(text, start, b" -.", true, 16);
    if groups.is_empty() || (plus && groups[0].parenthesised) {
        return None;
    }
    for n in (1..=groups.len()).rev() {
        let used = &groups[..n];
        let plausible = if plus {
            international_ok(used)
        } else {
            north_american_ok(used) || trunk_prefixed_ok(used) || grouped_ok(used)
        };
        let end = used[n - 1].end;
        if plausible && ends_cleanly(text, end) && (plus || !continues_after(text, end)) {
            return Some(end);
        }
    }
    None
}

fn total_digits(groups: &[Group]) -> usize {
    groups.iter().map(|g| g.digits).sum()
}

/// All separators after the first group are present and the same character.
fn consistent_seps(groups: &[Group]) -> bool {
    let first = groups.get(1).and_then(|g| g.sep);
    first.is_some() && groups[1..].iter().all(|g| g.sep == first)
}

/// `+44 20 7946 0958`, `+1 (555) 123-4567`, `+14155552671`, `+44 (0)20 7946 0958`.
fn international_ok(groups: &[Group]) -> bool {
    let digits = total_digits(groups);
    let paren_groups = groups.iter().filter(|g| g.parenthesised).count();
    (8..=15).contains(&digits) && paren_groups <= 1 && groups.iter().all(|g| g.digits <= 12)
}

/// `(555) 123-4567`, `555-123-4567`, `555.123.4567`, `555 123 4567`, `1-800-555-1234`.
fn north_american_ok(groups: &[Group]) -> bool {
    let rest = match groups {
        [first, rest @ ..]
            if rest.len() == 3 && !first.parenthesised && first.digits == 1 && first.first_digit == b'1' =>
        {
            // `1-800-…`, `1 (800) …`: the country code needs a separator or parentheses after it.
            if rest[0].sep.is_none() && !rest[0].parenthesised {
                return false;
            }
            rest
        }
        _ => groups,
    };
    let [area, exchange, line] = rest else {
        return false;
    };
    if area.digits != 3 || exchange.digits != 3 || line.digits != 4 {
        return false;
    }
    if exchange.parenthesised || line.parenthesised || !(b'2'..=b'9').contains(&area.first_digit) {
        return false;
    }
    if line.sep.is_none() {
        return false;
    }
    if area.parenthesised {
        matches!(exchange.sep, None | Some(b' ') | Some(b'-') | Some(b'.'))
    } else {
        exchange.sep.is_some() && exchange.sep == line.sep
    }
}

/// National numbers with a trunk prefix: `020 7946 0958`, `(020) 7946 0958`, `0800-123-4567`,
/// `01 23 45 67 89`.
fn trunk_prefixed_ok(groups: &[Group]) -> bool {
    if groups.len() < 2 || groups.len() > 5 || groups[0].first_digit != b'0' {
        return false;
    }
    if groups[1..].iter().any(|g| g.parenthesised) || groups.iter().any(|g| g.digits < 2) {
        return false;
    }
    let seps_ok = if groups[0].parenthesised {
        // `(020) 7946 0958`: the groups after the parentheses share one separator.
        let sep = groups.get(2).and_then(|g| g.sep);
        matches!(groups[1].sep, None | Some(b' ') | Some(b'-'))
            && groups[2..].iter().all(|g| g.sep.is_some() && g.sep == sep)
    } else {
        consistent_seps(groups)
    };
    seps_ok && (10..=12).contains(&total_digits(groups))
}

/// Other grouped numbers: `98765 43210`, `555 1234 5678`, `1234-567-890`.
fn grouped_ok(groups: &[Group]) -> bool {
    if !(2..=4).contains(&groups.len()) || groups.iter().any(|g| g.parenthesised) {
        return false;
    }
    if !consistent_seps(groups) || !matches!(groups[1].sep, Some(b' ') | Some(b'-')) {
        return false;
    }
    groups.iter().all(|g| (3..=5).contains(&g.digits)) && (10..=13).contains(&total_digits(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unchanged(s: &str) {
        assert_eq!(mask_pii(s), s, "should not be masked: {s:?}");
    }

    // ---- emails ----

    #[test]
    fn masks_emails() {
        assert_eq!(mask_pii("Contact jane.doe@example.com today"), "Contact [email] today");
        assert_eq!(mask_pii("a+tag@mail.co.uk"), "[email]");
        assert_eq!(mask_pii("<JOHN_SMITH99@Sub-Domain.Example.ORG>"), "<[email]>");
        assert_eq!(mask_pii("Email me: bob@example.io."), "Email me: [email].");
        assert_eq!(mask_pii("x@y.com,z@w.net"), "[email],[email]");
        assert_eq!(mask_pii("(mailto:help@acme.com)"), "(mailto:[email])");
    }

    #[test]
    fn keeps_non_emails() {
        unchanged("Use the @mention feature");
        unchanged("icon@2x.png and logo@3x.webp");
        unchanged("user@localhost");
        unchanged("email me at support at example dot com");
        unchanged("Price @ $5 each");
        unchanged("git rebase HEAD@{2}");
    }

    // ---- cards ----

    #[test]
    fn masks_cards() {
        assert_eq!(mask_pii("card 4111 1111 1111 1111 was declined"), "card [card] was declined");
        assert_eq!(mask_pii("4111-1111-1111-1111"), "[card]");
        assert_eq!(mask_pii("number:4111111111111111."), "number:[card].");
        assert_eq!(mask_pii("Amex 378282246310005"), "Amex [card]");
        assert_eq!(mask_pii("Amex 3782 822463 10005"), "Amex [card]");
        assert_eq!(mask_pii("MC 5555555555554444, thanks"), "MC [card], thanks");
        assert_eq!(mask_pii("Discover 6011-1111-1111-1117"), "Discover [card]");
        // 19 digits.
        assert_eq!(mask_pii("6011 0009 9013 9420 007"), "[card]");
        assert_eq!(mask_pii("6011000990139420007"), "[card]");
        assert_eq!(mask_pii("4222222222222"), "[card]");
    }

    #[test]
    fn card_next_to_other_numbers() {
        assert_eq!(mask_pii("Qty 2 4111 1111 1111 1111"), "Qty 2 [card]");
        assert_eq!(mask_pii("4111 1111 1111 1111 2024"), "[card] 2024");
    }

    #[test]
    fn keeps_non_cards() {
        // Fails the Luhn check.
        unchanged("4111 1111 1111 1112");
        unchanged("4111111111111112");
        // Too short / too long.
        unchanged("411111111111");
        unchanged("41111111111111111111");
        // Letters attached.
        unchanged("INV-4111111111111111");
        unchanged("ref4111111111111111");
        // Inconsistent or odd grouping.
        unchanged("41 11 11 11 11 11 11 11");
        unchanged("4111 1111-1111 1111");
        unchanged("Price $4111111111111111");
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
    }

    // ---- phones ----

    #[test]
    fn masks_international_phones() {
        assert_eq!(mask_pii("Call +44 20 7946 0958 now"), "Call [phone] now");
        assert_eq!(mask_pii("+1 (555) 123-4567"), "[phone]");
        assert_eq!(mask_pii("+14155552671"), "[phone]");
        assert_eq!(mask_pii("+44 (0)20 7946 0958"), "[phone]");
        assert_eq!(mask_pii("+49-30-901820"), "[phone]");
        assert_eq!(mask_pii("+33 1 23 45 67 89."), "[phone].");
        assert_eq!(mask_pii("+44 20 7946 0958 2024 edition"), "[phone] 2024 edition");
    }

    #[test]
    fn masks_north_american_phones() {
        assert_eq!(mask_pii("call (555) 123-4567 today"), "call [phone] today");
        assert_eq!(mask_pii("(555)123-4567"), "[phone]");
        assert_eq!(mask_pii("555-123-4567"), "[phone]");
        assert_eq!(mask_pii("555.123.4567"), "[phone]");
        assert_eq!(mask_pii("555 123 4567"), "[phone]");
        assert_eq!(mask_pii("1-800-555-1234"), "[phone]");
        assert_eq!(mask_pii("tel: 555-123-4567, ext 2"), "tel: [phone], ext 2");
        assert_eq!(mask_pii("(call 555-123-4567)"), "(call [phone])");
        assert_eq!(mask_pii("Phone:555-123-4567"), "Phone:[phone]");
    }

    #[test]
    fn masks_national_and_grouped_phones() {
        assert_eq!(mask_pii("ring 020 7946 0958"), "ring [phone]");
        assert_eq!(mask_pii("(020) 7946 0958"), "[phone]");
        assert_eq!(mask_pii("0800-123-4567"), "[phone]");
        assert_eq!(mask_pii("01 23 45 67 89"), "[phone]");
        assert_eq!(mask_pii("98765 43210"), "[phone]");
        assert_eq!(mask_pii("555 1234 5678"), "[phone]");
        assert_eq!(mask_pii("1234-567-890"), "[phone]");
    }

    #[test]
    fn keeps_support_doc_numbers() {
        unchanged("Error TH-4012 means the token expired");
        unchanged("E1042: disk full");
        unchanged("HTTP 429 Too Many Requests");
        unchanged("Released 2024-03-15 at 10:30:45 UTC");
        unchanged("From 2024-03-15 2024-03-16 inclusive");
        unchanged("It costs $1,200.50 per year, or €1 200");
        unchanged("Upgrade to v2.3.1 or 10.4.12");
        unchanged("Invoice INV-000123 and order #A-5551234567");
        unchanged("Order INV-555-123-4567");
        unchanged("Set the port to 8080, retry 3 times, wait 30 s");
        unchanged("Server 192.168.100.200 and 10.0.0.1");
        unchanged("Timestamp 1710460800 and id 5551234567");
        unchanged("pi is 3.14159265358979");
        unchanged("Sizes 10 20 30 40 50");
        unchanged("a ratio of 16:9 and 1920x1080");
        unchanged("Call 555-1234");
        unchanged("12345");
        unchanged("Use +5 or -3 as offsets");
        unchanged("Rows 100-200 and 300");
        unchanged("ISBN 978-3-16-148410-0");
        unchanged("request 123e4567-e89b-12d3-a456-426614174000");
        unchanged("Call 1 800 or 555");
        unchanged("Codes 1042 1043 1044 1045");
        unchanged("Steps: 1 2 3 4 5 6 7 8 9 10 11 12");
        unchanged("build 2024.03.15.1");
        unchanged("");
    }

    #[test]
    fn mixed_text() {
        let input = "Hi, I'm jane@example.com, call me on +1 555 123 4567 about card \
                     4111 1111 1111 1111 (order INV-000123, error TH-4012, 2024-03-15).";
        assert_eq!(
            mask_pii(input),
            "Hi, I'm [email], call me on [phone] about card \
             [card] (order INV-000123, error TH-4012, 2024-03-15)."
        );
    }

    #[test]
    fn unicode_text_survives() {
        assert_eq!(mask_pii("Grüße — ruf an: 020 7946 0958 ✓"), "Grüße — ruf an: [phone] ✓");
        unchanged("日本語のテキスト 12 件");
        unchanged("€€€ +++ (((");
    }

    #[test]
    fn never_panics_on_random_input() {
        let alphabet: Vec<char> = "0123456789 +-.()@a_x$,/#é€日\n".chars().collect();
        let mut state: u64 = 99;
        for _ in 0..3000 {
            let mut s = String::new();
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (state >> 58) as usize;
            for _ in 0..len {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                s.push(alphabet[((state >> 33) as usize) % alphabet.len()]);
            }
            let masked = mask_pii(&s);
            // Text without digits or '@' is never touched.
            if !s.chars().any(|c| c.is_ascii_digit() || c == '@') {
                assert_eq!(masked, s);
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "+",
            "(",
            "((((1",
            "+(",
            "+1",
            "1-",
            "1 ",
            "((555)",
            "(555",
            "555)",
            "+44 (0",
            "@",
            "a@",
            "@b.c",
            "+1 (555) 123-",
            "0(",
            "4111 ",
            "é+1é",
            "+\u{301}1",
        ];
        for s in samples {
            let _ = mask_pii(s);
        }
    }
}
