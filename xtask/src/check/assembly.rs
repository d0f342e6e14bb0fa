//! Why an array that crashed does not assemble, read from its members' superblocks: a
//! member md recorded as recovering (`MD_FEATURE_RECOVERY_OFFSET`) counts as missing, and
//! md will not start a RAID5/6 that is both dirty and missing a member ("cannot start
//! dirty degraded array").

use crate::ondisk::superblock::{MdSuper, MD_FEATURE_RECOVERY_BITMAP};

/// The members the superblocks record as recovering, each as `m2 (recovering from sector
/// 3328, feature_map 0x83, the recovery driven by the bitmap)`.
pub fn recovering_members(supers: &[(String, MdSuper)]) -> Vec<String> {
    supers
        .iter()
        .filter_map(|(name, sb)| {
            let from = sb.recovery_offset?;
            let by_bitmap = if sb.feature_map & MD_FEATURE_RECOVERY_BITMAP != 0 {
                ", the recovery driven by the bitmap"
            } else {
                ""
            };
            Some(format!(
                "{name} (recovering from sector {from}, feature_map {:#x}{by_bitmap})",
                sb.feature_map
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::superblock::testing::{encode, raid1_member};
    use crate::ondisk::superblock::{
        decode, SuperVersion, MD_FEATURE_BITMAP_OFFSET, MD_FEATURE_RECOVERY_OFFSET,
    };

    #[test]
    fn a_member_recorded_recovering_is_named_and_one_in_sync_is_not() {
        let member = raid1_member(SuperVersion::V1_2, 64 << 20);
        let mut recovering = member.clone();
        recovering.feature_map =
            MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_RECOVERY_OFFSET | MD_FEATURE_RECOVERY_BITMAP;
        recovering.recovery_offset = 3328;
        let sb = |s| decode(&encode(s)).unwrap();
        let supers = vec![
            ("m0".to_string(), sb(&member)),
            ("m2".to_string(), sb(&recovering)),
        ];
        assert_eq!(
            recovering_members(&supers),
            ["m2 (recovering from sector 3328, feature_map 0x83, the recovery driven by the bitmap)"]
        );
        assert!(recovering_members(&supers[..1]).is_empty());
    }
}
