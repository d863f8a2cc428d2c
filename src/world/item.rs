//! Matching what a player types against the items in a room or an inventory.

/// Finds the item a player means by `query` in `items`, for `get` and `drop`.
///
/// A case-insensitive exact match wins (the first, if the same item lies there
/// twice); otherwise a case-insensitive prefix match is taken if every item it
/// matches has the same name, so `get lan` picks up the lantern but `get b` in
/// a room with bread and a book asks nothing of the player and finds nothing.
/// Allocates nothing: it runs on every `get` and `drop`.
pub fn find_item(items: &[String], query: &str) -> Option<usize> {
    if query.is_empty() {
        return None;
    }
    if let Some(i) = items.iter().position(|item| eq_folded(item, query)) {
        return Some(i);
    }
    let mut found: Option<usize> = None;
    for (i, item) in items.iter().enumerate() {
        if !starts_with_folded(item, query) {
            continue;
        }
        match found {
            None => found = Some(i),
            Some(first) if eq_folded(&items[first], item) => {}
            Some(_) => return None,
        }
    }
    found
}

fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

fn eq_folded(a: &str, b: &str) -> bool {
    folded(a).eq(folded(b))
}

fn starts_with_folded(hay: &str, prefix: &str) -> bool {
    let mut hay = folded(hay);
    folded(prefix).all(|c| hay.next() == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_ignores_case() {
        let room = items(&["lantern", "bread"]);
        assert_eq!(find_item(&room, "bread"), Some(1));
        assert_eq!(find_item(&room, "LANTERN"), Some(0));
    }

    #[test]
    fn exact_match_beats_a_longer_prefix_match() {
        let room = items(&["lanterns", "lantern"]);
        assert_eq!(find_item(&room, "lantern"), Some(1));
    }

    #[test]
    fn unique_prefix_matches() {
        let room = items(&["lantern", "bread"]);
        assert_eq!(find_item(&room, "lan"), Some(0));
        assert_eq!(find_item(&room, "B"), Some(1));
    }

    #[test]
    fn ambiguous_prefix_matches_nothing() {
        let room = items(&["bread", "book"]);
        assert_eq!(find_item(&room, "b"), None);
        assert_eq!(find_item(&room, "bo"), Some(1));
    }

    #[test]
    fn duplicates_of_one_item_are_not_ambiguous() {
        let room = items(&["stone", "apple", "stone"]);
        assert_eq!(find_item(&room, "st"), Some(0));
        assert_eq!(find_item(&room, "stone"), Some(0));
    }

    #[test]
    fn no_match_empty_query_and_empty_list() {
        let room = items(&["lantern"]);
        assert_eq!(find_item(&room, "sword"), None);
        assert_eq!(find_item(&room, "lanternx"), None);
        assert_eq!(find_item(&room, ""), None);
        assert_eq!(find_item(&[], "lantern"), None);
    }

    #[test]
    fn unicode_case_folds() {
        let room = items(&["épée", "ÆTHER"]);
        assert_eq!(find_item(&room, "ÉPÉE"), Some(0));
        assert_eq!(find_item(&room, "æ"), Some(1));
    }
}
