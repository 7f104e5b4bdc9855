//! How large an image may grow when it is decompressed: a few megabytes of gzip can hold
//! gigabytes of zeros, and bzip2 or xz far more, so every image's tar stream is counted as it
//! is decompressed and refused past a bound, before it fills the store.
//!
//! The default bound is [`DEFAULT_MAX_IMAGE_SIZE`], and past [`RATIO_FLOOR`] no more than
//! [`MAX_RATIO`] times the image's compressed size. Real root filesystems compress 2 to 10
//! times (tar headers of many small files a little more); a stream of zeros compresses about
//! 1000 times in gzip and far more in bzip2, xz or zstd. So the ratio stops a bomb long before
//! the absolute bound would (a 4 MiB download is refused at 1 GiB, not at 32 GiB), while the
//! floor keeps small images of highly compressible files out of its way. A size the user gives
//! (`--max-image-size`) replaces both: it is their decision for the images they trust.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default most bytes an image's decompressed tar streams may hold.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 32 << 30;
/// Below this, the default bound does not look at the compression ratio.
pub const RATIO_FLOOR: u64 = 1 << 30;
/// Past [`RATIO_FLOOR`], the default bound allows this many times the compressed size.
pub const MAX_RATIO: u64 = 100;

/// How large an image may grow once decompressed (`--max-image-size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageSizeLimit {
    /// [`DEFAULT_MAX_IMAGE_SIZE`], and [`MAX_RATIO`] times the compressed size past
    /// [`RATIO_FLOOR`].
    #[default]
    Default,
    /// At most this many bytes, whatever the ratio (given by the user).
    Max(u64),
}

impl ImageSizeLimit {
    /// The bound for an image of `compressed` bytes as stored (its ACI, or its layers summed).
    pub fn bound(self, compressed: u64) -> SizeBound {
        match self {
            ImageSizeLimit::Max(bytes) => SizeBound {
                bytes,
                reason: BoundReason::Given,
            },
            ImageSizeLimit::Default => {
                let by_ratio = compressed.saturating_mul(MAX_RATIO).max(RATIO_FLOOR);
                if by_ratio < DEFAULT_MAX_IMAGE_SIZE {
                    SizeBound {
                        bytes: by_ratio,
                        reason: BoundReason::Ratio { compressed },
                    }
                } else {
                    SizeBound {
                        bytes: DEFAULT_MAX_IMAGE_SIZE,
                        reason: BoundReason::Default,
                    }
                }
            }
        }
    }
}

/// `SIZE` of `--max-image-size`: bytes, or a number with K, M, G or T (powers of 1024, as
/// `df -h` counts; `KiB`, `MB`… are read the same way).
impl FromStr for ImageSizeLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            let shown: String = text.chars().take(40).collect();
            format!("{shown:?} is not a size like 512M, 8G or 1T")
        };
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let shift = match unit.to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            _ => return Err(bad()),
        };
        let bytes = number
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{text:?} is larger than rkt can count (16 EiB)"))?;
        if bytes == 0 {
            return Err("a size of 0 would refuse every image; give one like 512M or 8G".into());
        }
        Ok(ImageSizeLimit::Max(bytes))
    }
}

/// The most bytes one image may decompress to, and where that number comes from (for the
/// message that refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeBound {
    pub bytes: u64,
    pub reason: BoundReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundReason {
    /// `--max-image-size`.
    Given,
    /// [`DEFAULT_MAX_IMAGE_SIZE`].
    Default,
    /// [`MAX_RATIO`] times these compressed bytes.
    Ratio { compressed: u64 },
}

/// The refusal: what the bound is and how to raise it.
impl fmt::Display for SizeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = human_size(self.bytes);
        match self.reason {
            BoundReason::Given => write!(
                f,
                "the image expands past {limit}, the limit set by --max-image-size (or \
                 RKT_MAX_IMAGE_SIZE); raise it if the image is trusted to be that large"
            ),
            BoundReason::Default => write!(
                f,
                "the image expands past {limit}, rkt's default limit; if it is trusted to be \
                 that large, raise the limit with --max-image-size=SIZE (e.g. {}) or \
                 RKT_MAX_IMAGE_SIZE",
                human_size(self.bytes.saturating_mul(2))
            ),
            BoundReason::Ratio { compressed } => write!(
                f,
                "the image expands past {limit}, more than {MAX_RATIO} times its {} compressed \
                 (a decompression bomb?); if it is trusted, allow it with --max-image-size=SIZE \
                 (e.g. 64G) or RKT_MAX_IMAGE_SIZE",
                human_size(compressed)
            ),
        }
    }
}

/// Decompressed bytes counted against a [`SizeBound`], by one thread or several (the layers of
/// an OCI image decompress side by side, and count against one bound together).
#[derive(Debug)]
pub struct Budget {
    bound: SizeBound,
    used: AtomicU64,
}

impl Budget {
    pub fn new(bound: SizeBound) -> Budget {
        Budget {
            bound,
            used: AtomicU64::new(0),
        }
    }

    /// Counts `n` more bytes; false once the total passed the bound.
    pub fn take(&self, n: u64) -> bool {
        let total = self.used.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        total <= self.bound.bytes
    }

    pub fn exceeded(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.bound.bytes
    }

    pub fn bound(&self) -> SizeBound {
        self.bound
    }
}

/// A reader that fails once more than its bound was read from it; [`Bounded::passed`] then
/// tells that failure apart from the stream's own.
pub(crate) struct Bounded<R> {
    inner: R,
    left: u64,
    passed: bool,
}

impl<R> Bounded<R> {
    pub(crate) fn new(inner: R, bound: u64) -> Bounded<R> {
        Bounded {
            inner,
            left: bound,
            passed: false,
        }
    }

    pub(crate) fn passed(&self) -> bool {
        self.passed
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.passed = true;
                Err(std::io::Error::other("the image passed its size limit"))
            }
        }
    }
}

/// `512 MiB`, `1.5 GiB`, `300 B`: whole numbers when exact.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >= 1 << (10 * (unit + 1)) {
        unit += 1;
    }
    let scale = 1u64 << (10 * unit);
    if bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        let max = |s: &str| match s.parse::<ImageSizeLimit>() {
            Ok(ImageSizeLimit::Max(n)) => Ok(n),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(max("512M"), Ok(512 << 20));
        assert_eq!(max("8G"), Ok(8 << 30));
        assert_eq!(max("8g"), Ok(8 << 30));
        assert_eq!(max("2GiB"), Ok(2 << 30));
        assert_eq!(max("1T"), Ok(1 << 40));
        assert_eq!(max("4096"), Ok(4096));
        for bad in ["", "M", "-1G", "1.5G", "8 G", "8X", "G8", "0", "0G"] {
            let err = max(bad).unwrap_err();
            assert!(!err.contains('\n'), "{bad:?}: {err}");
        }
        assert!(max("99999999999T").unwrap_err().contains("larger"));
        let long = "9".repeat(5000);
        assert!(
            max(&long).unwrap_err().len() < 120,
            "the value is quoted short"
        );
    }

    #[test]
    fn the_default_bound_follows_the_compressed_size() {
        // A 4 MiB bomb may not pass 1 GiB.
        let small = ImageSizeLimit::Default.bound(4 << 20);
        assert_eq!(small.bytes, RATIO_FLOOR);
        assert_eq!(
            small.reason,
            BoundReason::Ratio {
                compressed: 4 << 20
            }
        );
        // 100 MiB compressed may expand to 10000 MiB.
        assert_eq!(
            ImageSizeLimit::Default.bound(100 << 20).bytes,
            100 * (100 << 20)
        );
        // A big download is capped by the absolute default.
        let big = ImageSizeLimit::Default.bound(1 << 30);
        assert_eq!(
            (big.bytes, big.reason),
            (DEFAULT_MAX_IMAGE_SIZE, BoundReason::Default)
        );
        // A given size is the bound, however small the image.
        let given = ImageSizeLimit::Max(1 << 20).bound(1);
        assert_eq!((given.bytes, given.reason), (1 << 20, BoundReason::Given));
    }

    #[test]
    fn refusals_say_the_limit_and_how_to_raise_it() {
        let ratio = ImageSizeLimit::Default.bound(4 << 20).to_string();
        assert!(
            ratio.contains("1 GiB")
                && ratio.contains("4 MiB")
                && ratio.contains("--max-image-size"),
            "{ratio}"
        );
        let given = ImageSizeLimit::Max(512 << 20).bound(1).to_string();
        assert!(
            given.contains("512 MiB") && given.contains("--max-image-size"),
            "{given}"
        );
        let default = ImageSizeLimit::Default.bound(u64::MAX).to_string();
        assert!(
            default.contains("32 GiB") && default.contains("default"),
            "{default}"
        );
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(300), "300 B");
    }

    #[test]
    fn a_budget_is_shared_by_its_takers() {
        let budget = Budget::new(ImageSizeLimit::Max(10).bound(0));
        assert!(budget.take(6) && !budget.exceeded());
        assert!(budget.take(4) && !budget.exceeded());
        assert!(!budget.take(1) && budget.exceeded());
    }
}
