//! Text tables whose columns line up whatever they hold: each column is as wide as its
//! widest cell, so a 60-character case name moves the columns after it instead of pushing
//! its own row out of line.

/// Which side of its column a cell keeps to: words left, figures right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table: a header row, then rows of the same number of cells.
#[derive(Debug, Clone)]
pub struct Columns {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Columns {
    /// A table of these columns (heading, alignment); the headings are its first row.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Columns {
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: vec![columns.iter().map(|(h, _)| h.to_string()).collect()],
        }
    }

    /// Adds a row; a short one is filled with empty cells.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut cells: Vec<String> = cells.into_iter().collect();
        assert!(cells.len() <= self.align.len(), "more cells than columns");
        cells.resize(self.align.len(), String::new());
        self.rows.push(cells);
    }

    /// The lines, two spaces between columns, no space at a line's end.
    pub fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.align.len()).map(width).collect();
        let lines: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let cells: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .zip(&self.align)
                    .map(|((cell, &w), align)| match align {
                        Align::Left => format!("{cell:<w$}"),
                        Align::Right => format!("{cell:>w$}"),
                    })
                    .collect();
                cells.join("  ").trim_end().to_string()
            })
            .collect();
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_column_is_as_wide_as_its_widest_cell() {
        let mut t = Columns::new(&[
            ("name", Align::Left),
            ("n", Align::Right),
            ("note", Align::Left),
        ]);
        t.row(["a-much-longer-name".to_string(), "7".into(), "x".into()]);
        t.row(["b".to_string(), "1234".into()]);
        assert_eq!(
            t.render(),
            "name                   n  note\n\
             a-much-longer-name     7  x\n\
             b                   1234"
        );
    }
}
