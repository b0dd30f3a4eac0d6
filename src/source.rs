//! Source texts and spans.
//!
//! `load` produces a [`SourceSet`]: every spec file of a project as an in-memory
//! text, in sorted path order. Every later stage refers to text through a
//! [`Span`] (a source id plus a byte range), so no stage after `load` touches
//! the filesystem and diagnostics can point anywhere in the project.

use std::ops::Range;

/// The file that holds project-wide settings; its folder is the project.
pub const PROJECT_FILE: &str = "accord.toml";

/// Index of a file in its [`SourceSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SourceId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub source: SourceId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(source: SourceId, range: Range<usize>) -> Span {
        Span {
            source,
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// A span inside this one, given relative byte offsets.
    pub fn sub(&self, range: Range<usize>) -> Span {
        Span {
            source: self.source,
            start: self.start + range.start as u32,
            end: self.start + range.end as u32,
        }
    }
}

/// One spec file: its path relative to the project root, always with `/`
/// separators so output never depends on the platform.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
    /// Byte offset of the start of every line, for line/column lookups.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

/// All files of a spec project, sorted by path.
#[derive(Clone, Debug, Default)]
pub struct SourceSet {
    files: Vec<SourceFile>,
    /// Symbolic links that could not be followed. Each has an empty file in
    /// `files`, so a diagnostic can point at the link like at any other file.
    broken_links: Vec<BrokenLink>,
}

/// A symbolic link that `load` did not follow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BrokenLink {
    /// The link's path below the project root, `/`-separated.
    pub path: String,
    /// Why, as a phrase: "it points to `x`, which does not exist".
    pub why: String,
    /// The link leads back into a folder it is in. Unlike a dangling link,
    /// it hides nothing: that folder is read once, by its own path.
    pub loops: bool,
}

impl SourceSet {
    /// Builds a set from files in any order; they are sorted by path so that
    /// everything downstream is independent of the order the OS listed them in.
    pub fn new(mut files: Vec<SourceFile>) -> SourceSet {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        SourceSet {
            files,
            broken_links: Vec::new(),
        }
    }

    /// Records symbolic links that could not be followed, each with an
    /// empty file at its path.
    pub fn with_broken_links(files: Vec<SourceFile>, mut links: Vec<BrokenLink>) -> SourceSet {
        let mut set = SourceSet::new(files);
        links.sort();
        for link in &links {
            if !set.files.iter().any(|f| f.path == link.path) {
                set.files.push(SourceFile::new(link.path.clone(), ""));
            }
        }
        set.files.sort_by(|a, b| a.path.cmp(&b.path));
        set.broken_links = links;
        set
    }

    /// The same files, their paths prefixed with `prefix` (`specs/`): how
    /// diagnostics name them from a folder other than the project's, so
    /// that editors and CI annotations find the files. Ids are unchanged.
    pub fn shown_from(&self, prefix: &str) -> SourceSet {
        let mut set = self.clone();
        if !prefix.is_empty() {
            for file in &mut set.files {
                file.path = format!("{prefix}{}", file.path);
            }
        }
        set
    }

    /// The links that could not be followed, with the id of each link's
    /// (empty) file.
    pub fn broken_links(&self) -> impl Iterator<Item = (SourceId, &BrokenLink)> {
        self.broken_links.iter().filter_map(|link| {
            let i = self.files.iter().position(|f| f.path == link.path)?;
            Some((SourceId(i as u32), link))
        })
    }

    pub fn file(&self, id: SourceId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn text(&self, span: Span) -> &str {
        self.file(span.source)
            .text
            .get(span.range())
            .unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (SourceId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (SourceId(i as u32), f))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based_and_counts_characters() {
        let f = SourceFile::new("a.toml", "ab\nçd\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_col(100), (3, 1));
    }
}
