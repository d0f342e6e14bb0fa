//! `agent workload ...`: the seeded random writer a crash case runs in the guest. Several
//! threads write random sizes at random offsets of a device until killed; every choice
//! comes from the seed, so a run can be replayed (the timing of the kill cannot).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub dev: String,
    pub seed: u64,
    pub writers: u32,
    pub min_io: u64,
    pub max_io: u64,
    /// Bytes of the device the writes fall in, from offset 0.
    pub span: u64,
    pub direct: bool,
}

/// The arguments `agent workload` takes, as the host builds them.
pub fn args(w: &Workload) -> String {
    format!(
        "--dev {} --seed {} --writers {} --min-io {} --max-io {} --span {}{}",
        w.dev,
        w.seed,
        w.writers,
        w.min_io,
        w.max_io,
        w.span,
        if w.direct { " --direct" } else { "" }
    )
}

pub fn parse(args: &[String]) -> Result<Workload, String> {
    let mut w = Workload {
        dev: String::new(),
        seed: 0,
        writers: 4,
        min_io: 4096,
        max_io: 262144,
        span: 0,
        direct: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--seed" => w.seed = num("--seed")?,
            "--writers" => w.writers = num("--writers")? as u32,
            "--min-io" => w.min_io = num("--min-io")?,
            "--max-io" => w.max_io = num("--max-io")?,
            "--span" => w.span = num("--span")?,
            "--direct" => w.direct = true,
            "--dev" => w.dev = it.next().cloned().ok_or("--dev needs a path")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if w.dev.is_empty()
        || w.span < w.max_io
        || w.min_io == 0
        || w.min_io > w.max_io
        || w.writers == 0
    {
        return Err(format!("bad workload {w:?}"));
    }
    Ok(w)
}

/// splitmix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi]`, in whole `align` units.
    pub fn aligned(&mut self, lo: u64, hi: u64, align: u64) -> u64 {
        let (lo, hi) = (lo / align, hi / align);
        (lo + self.next_u64() % (hi - lo + 1)) * align
    }
}

const ALIGN: u64 = 4096;

/// The `i`-th write of writer `t`: (offset, length). Pure, so tests and the host can
/// recompute what a seed writes.
pub fn nth_write(w: &Workload, rng: &mut Rng) -> (u64, u64) {
    let len = rng.aligned(w.min_io, w.max_io, ALIGN);
    let off = rng.aligned(0, w.span - len, ALIGN);
    (off, len)
}

pub fn run(w: &Workload) -> ! {
    let threads: Vec<_> = (0..w.writers)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || writer(&w, t))
        })
        .collect();
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("workload: {e}");
            std::process::exit(1);
        }
    }
    std::process::exit(0)
}

fn writer(w: &Workload, t: u32) -> Result<(), String> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if w.direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    let file = opts
        .open(&w.dev)
        .map_err(|e| format!("open {}: {e}", w.dev))?;
    let mut rng = Rng::new(w.seed ^ (u64::from(t) << 32 | 0x5eed));
    let layout = std::alloc::Layout::from_size_align(w.max_io as usize, ALIGN as usize)
        .map_err(|e| e.to_string())?;
    // SAFETY: non-zero size; freed never (the process ends by being killed or exiting).
    let ptr = unsafe { std::alloc::alloc(layout) };
    if ptr.is_null() {
        return Err("out of memory".into());
    }
    let buf = unsafe { std::slice::from_raw_parts_mut(ptr, w.max_io as usize) };
    for seq in 0u64.. {
        let (off, len) = nth_write(w, &mut rng);
        // Content names the writer and the write, so a torn or misplaced block shows.
        let stamp = (u64::from(t) << 48) ^ seq;
        for (i, chunk) in buf[..len as usize].chunks_mut(8).enumerate() {
            chunk
                .copy_from_slice(&(stamp ^ (i as u64).wrapping_mul(0x100_0000_01b3)).to_le_bytes());
        }
        file.write_all_at(&buf[..len as usize], off)
            .map_err(|e| format!("write {len} at {off}: {e}"))?;
        if t == 0 && seq.is_multiple_of(64) && !w.direct {
            let _ = file.sync_data();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_and_writes_stay_aligned_inside_the_span() {
        let w = Workload {
            dev: "/dev/md0".into(),
            seed: 9,
            writers: 3,
            min_io: 4096,
            max_io: 65536,
            span: 1 << 20,
            direct: true,
        };
        let argv: Vec<String> = args(&w).split(' ').map(String::from).collect();
        assert_eq!(parse(&argv).unwrap(), w);
        let mut rng = Rng::new(w.seed);
        for _ in 0..1000 {
            let (off, len) = nth_write(&w, &mut rng);
            assert!(
                off % 4096 == 0
                    && len % 4096 == 0
                    && (4096..=65536).contains(&len)
                    && off + len <= w.span
            );
        }
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        assert_eq!(
            (0..10).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..10).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        assert!(
            parse(&["--dev".into(), "/x".into()]).is_err(),
            "a span smaller than max-io is refused"
        );
    }
}
