//! md's messages in the kernel log that a verdict turns on.

/// Kernel messages that excuse a resync beyond the bitmap.
pub fn full_recovery_messages(dmesg: &str) -> Vec<String> {
    dmesg
        .lines()
        .filter(|l| l.contains("forcing full recovery") || l.contains("doing full recovery"))
        .map(|l| l.trim().to_string())
        .collect()
}

/// What md says when it cannot use or keep a bitmap (6.12's `md-bitmap.c`).
pub const BITMAP_COMPLAINTS: [&str; 7] = [
    "kicking failed bitmap file",
    "md: bitmap read error",
    "bitmap file too short",
    "invalid bitmap file superblock",
    "bitmap superblock UUID mismatch",
    "md: cannot resize file-based bitmap",
    "bitmap: write error",
];

/// The lines of a kernel log where md complains about a bitmap.
pub fn bitmap_complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| BITMAP_COMPLAINTS.iter().any(|p| l.contains(p)))
        .map(|l| l.trim().to_string())
        .collect()
}

/// md's announcements that it dropped a bitmap file after a write error.
pub fn bitmap_kicked_messages(dmesg: &str) -> Vec<String> {
    dmesg
        .lines()
        .filter(|l| l.contains("kicking failed bitmap file"))
        .map(|l| l.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_recovery_announcements_count() {
        assert_eq!(
            full_recovery_messages(
                "[1] md0: bitmap file is out of date, doing full recovery\n[2] ok\n"
            )
            .len(),
            1
        );
        assert_eq!(
            bitmap_kicked_messages(
                "[5.0] md0: kicking failed bitmap file /mnt/bitmap from array!\n[6] x\n"
            ),
            ["[5.0] md0: kicking failed bitmap file /mnt/bitmap from array!"]
        );
    }
}
