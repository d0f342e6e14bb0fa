//! A case's matrix: the axes it expands over, their combinations minus the excluded
//! ones, and what each combination changes in the case.

use super::schema::*;

impl MatrixPoint {
    /// `raid5-n3-file-64K`: the axes this point sets, in a fixed order.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.level {
            parts.push(format!("raid{l}"));
        }
        if let Some(n) = self.members {
            parts.push(format!("n{n}"));
        }
        if let Some(b) = self.bitmap {
            parts.push(b.as_str().into());
        }
        if let Some(c) = self.chunk {
            parts.push(size_label(c.0));
        }
        if let Some(l) = self.lie {
            parts.push(l.label().into());
        }
        parts.join("-")
    }

    /// Whether every axis `pattern` names has the same value here.
    fn matches(&self, pattern: &MatrixPoint) -> bool {
        pattern.level.is_none_or(|v| self.level == Some(v))
            && pattern.members.is_none_or(|v| self.members == Some(v))
            && pattern.bitmap.is_none_or(|v| self.bitmap == Some(v))
            && pattern.chunk.is_none_or(|v| self.chunk == Some(v))
            && pattern.lie.is_none_or(|v| self.lie == Some(v))
    }

    /// Sets this combination's values on `case`; a member count the case's own list
    /// cannot supply is refused (the members are its first `n`).
    pub(super) fn apply(&self, case: &mut CaseFile) -> Result<(), String> {
        if let Some(l) = self.lie {
            case.bitmap_lie
                .as_mut()
                .ok_or("matrix.lie: the case has no bitmap_lie to set it on")?
                .lie = Some(l);
        }
        let Some(a) = case.array.as_mut() else {
            return Ok(());
        };
        if let Some(l) = self.level {
            a.level = l;
        }
        if let Some(n) = self.members {
            if n > a.members.len() {
                return Err(format!(
                    "matrix.members {n}: array.members lists only {}",
                    a.members.len()
                ));
            }
            a.members.truncate(n);
        }
        if let Some(b) = self.bitmap {
            a.bitmap.kind = b;
            if b.in_members() {
                a.bitmap.disk.clear();
            }
        }
        if let Some(c) = self.chunk {
            a.bitmap.chunk = c;
        }
        Ok(())
    }
}

fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % 1024 == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

impl MatrixSpec {
    /// Every combination of the axes given, minus the excluded ones, in file order.
    pub fn points(&self) -> Vec<MatrixPoint> {
        fn axis<T: Copy>(v: &[T]) -> Vec<Option<T>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().copied().map(Some).collect()
            }
        }
        let mut out = Vec::new();
        for level in axis(&self.level) {
            for members in axis(&self.members) {
                for bitmap in axis(&self.bitmap) {
                    for chunk in axis(&self.chunk) {
                        for lie in axis(&self.lie) {
                            let p = MatrixPoint {
                                level,
                                members,
                                bitmap,
                                chunk,
                                lie,
                            };
                            if !self.exclude.iter().any(|x| p.matches(x)) {
                                out.push(p);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}
