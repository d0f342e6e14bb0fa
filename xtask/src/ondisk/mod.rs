//! Decoders (and one writer) for what md leaves on disk, read from raw images on the host.

pub mod bitmap;
pub mod chunk_state;
pub mod llbitmap;
pub mod log_writes;
pub mod redundancy;
pub mod superblock;
pub mod xfs;

// Little-endian field readers shared by the decoders. Callers check the buffer length
// once against the structure size before reading fields, so these index directly.

pub(crate) fn read_u16le(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

pub(crate) fn read_u32le(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

pub(crate) fn read_u64le(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

pub(crate) fn read_array16(bytes: &[u8], offset: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes[offset..offset + 16]);
    out
}

/// A fixed-size C `char[]` field: everything up to the first NUL, or the whole field.
/// md never validates these as UTF-8, so invalid bytes are replaced, not rejected.
pub(crate) fn read_cstr(bytes: &[u8], offset: usize, len: usize) -> String {
    let field = &bytes[offset..offset + len];
    let end = field.iter().position(|&b| b == 0).unwrap_or(len);
    String::from_utf8_lossy(&field[..end]).into_owned()
}
pub mod ext4;
