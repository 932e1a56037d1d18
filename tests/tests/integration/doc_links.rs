//! The documentation's relative links: every `](target)` in README.md and docs/*.md that is
//! not a web or mail address must name a file that exists, and its `#anchor` a heading of
//! that file (GitHub's anchors). The README stays a first hour's read.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The most lines the README may have.
const README_MAX_LINES: usize = 300;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the repository")
        .to_path_buf()
}

/// README.md and every Markdown file directly under docs/.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines outside fenced code blocks (``` or ~~~), with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match (fence, marker) {
            (None, Some(m)) if run >= 3 => fence = Some((m, run)),
            (None, _) => lines.push((i + 1, line)),
            (Some((m, open)), Some(c))
                if c == m && run >= open && trimmed[run * c.len_utf8()..].trim().is_empty() =>
            {
                fence = None
            }
            (Some(_), _) => {}
        }
    }
    lines
}

/// The line without its inline code spans (`…`, ``…``), which hold no links.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let ticks = "`".repeat(run);
        let after = &rest[start + run..];
        match after.find(&ticks) {
            Some(end) => rest = &after[end + run..],
            // An unmatched run is literal text.
            None => {
                out.push_str(&ticks);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of the inline links and images of one line: what follows `](` up to the
/// matching `)`, without a title or angle brackets.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = i;
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let inside = after[..end].trim();
        let target = match inside.strip_prefix('<') {
            Some(bracketed) => bracketed.split('>').next().unwrap_or_default(),
            None => inside.split_whitespace().next().unwrap_or_default(),
        };
        targets.push(target.to_string());
        rest = &after[end.min(after.len())..];
    }
    targets
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

/// GitHub's anchor of a heading's text: lowercase, only alphanumerics, spaces, `-` and `_`
/// kept, spaces turned into `-`. Inline code marks and link targets are dropped first.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` reads as `text`.
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown document's ATX headings; a repeated one gets `-1`, `-2`, ….
fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() > 3 {
            continue;
        }
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&level) {
            continue;
        }
        let after = &trimmed[level..];
        if !(after.is_empty() || after.starts_with(' ') || after.starts_with('\t')) {
            continue;
        }
        // A closing run of `#` is not part of the heading.
        let mut heading = after.trim();
        let closing = heading.trim_end_matches('#');
        if closing.is_empty() || closing.ends_with(' ') {
            heading = closing.trim_end();
        }
        let base = slug(heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while found.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        found.insert(anchor);
    }
    found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every broken relative link of the documents, as `file:line: target (why)`.
fn broken_links() -> Vec<String> {
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("a document is readable");
        let dir = file.parent().expect("a document sits in a directory");
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if is_external(&target) {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let at = format!("{}:{number}: {target}", relative(&file));
                if path.is_empty() && anchor.is_none() {
                    broken.push(format!("{at} (empty target)"));
                    continue;
                }
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{at} (no file {})", relative(&linked)));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if linked.extension().is_none_or(|ext| ext != "md") {
                    broken.push(format!("{at} (an anchor into a file that is not Markdown)"));
                    continue;
                }
                let linked_text = std::fs::read_to_string(&linked).expect("a linked file");
                if !anchors(&linked_text).contains(anchor) {
                    broken.push(format!(
                        "{at} (no heading #{anchor} in {})",
                        relative(&linked)
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_reaches_a_file_and_heading() {
    let broken = broken_links();
    assert!(
        broken.is_empty(),
        "{} broken link(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_readme_stays_short() {
    let text = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the depth into docs/"
    );
}

#[test]
fn the_link_checker_reads_markdown_as_github_does() {
    assert_eq!(slug("Rehearsed in an emulator"), "rehearsed-in-an-emulator");
    assert_eq!(
        slug("The relay: keep your Logto, add durable delivery"),
        "the-relay-keep-your-logto-add-durable-delivery"
    );
    assert_eq!(
        slug("`scripts/aws-check` and sam"),
        "scriptsaws-check-and-sam"
    );
    assert_eq!(slug("Storage items_and keys"), "storage-items_and-keys");
    assert_eq!(
        slug("See [the API](api.md) — in brief"),
        "see-the-api--in-brief"
    );

    let doc = "# Title\n## Usage\n```\n## Not a heading\n[x](nowhere.md)\n```\n### Usage ##\n";
    let found = anchors(doc);
    for anchor in ["title", "usage", "usage-1"] {
        assert!(found.contains(anchor), "{anchor} in {found:?}");
    }
    assert!(!found.contains("not-a-heading"));
    assert_eq!(prose_lines(doc).len(), 3);

    assert_eq!(
        link_targets("see [a](a.md#x), ![b](<b c.png>) and [c](c.md \"title\")"),
        ["a.md#x", "b c.png", "c.md"]
    );
    assert!(link_targets("`[not](a-link.md)` only").is_empty());
    assert!(is_external("https://example.com") && is_external("mailto:a@example.com"));
}
