//! What can be wrong in a tar stream, as the reader finds it: headers, fields, PAX records,
//! sparse maps, and streams cut short. [`super::super::LayerError::Corrupt`] carries one with
//! the offset and entry it was found at.

use super::fields::NumberError;

/// A malformation of a tar stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TarFault {
    /// A zero block before the end-of-archive marker is complete.
    #[error("a zero block in the middle of the archive")]
    ZeroBlock,
    /// The header's checksum field disagrees with its bytes.
    #[error("header checksum does not match")]
    Checksum,
    /// More entries than kiln reads from one archive.
    #[error("more than {limit} entries in one archive")]
    TooManyEntries {
        /// The bound.
        limit: u64,
    },
    /// A name longer than a path may be.
    #[error("a name of {len} bytes, longer than a path may be ({limit})")]
    NameTooLong {
        /// Its length.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// A numeric header field that cannot be read.
    #[error("{field}: {error}")]
    Number {
        /// The field (`mode`, `size`).
        field: &'static str,
        /// Why.
        error: NumberError,
    },
    /// A numeric header field that is negative.
    #[error("{field} is negative")]
    Negative {
        /// The field.
        field: &'static str,
    },
    /// A device number over 32 bits.
    #[error("{field} does not fit 32 bits")]
    Over32Bits {
        /// The field.
        field: &'static str,
    },
    /// A file larger than a filesystem holds.
    #[error("a file of {size} bytes, larger than a filesystem holds ({limit})")]
    FileTooLarge {
        /// Its size.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// An extended header larger than kiln reads.
    #[error("extended header of {size} bytes (at most {limit})")]
    SpecialTooLarge {
        /// Its size.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// The stream ends inside a header block.
    #[error("the archive ends inside a header")]
    EndsInHeader,
    /// The stream ends before an entry's data or the end-of-archive marker.
    #[error("the archive ends too early")]
    EndsEarly,
    /// A PAX body that is not a sequence of `<len> <key>=<value>\n` records.
    #[error("{0}")]
    PaxSyntax(PaxSyntax),
    /// A PAX record whose value does not suit its key.
    #[error("PAX record {key}={value:?}: {problem}")]
    PaxValue {
        /// The key.
        key: String,
        /// The value, lossily shown.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A PAX record whose value must be text and is not.
    #[error("PAX record {key}: not text")]
    PaxNotText {
        /// The key.
        key: String,
    },
    /// A sparse map that cannot be read or does not describe the data.
    #[error("{0}")]
    Sparse(SparseFault),
}

/// A PAX body that is not made of records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaxSyntax {
    /// No length before the first space.
    #[error("PAX record without a length")]
    NoLength,
    /// The length is not a number.
    #[error("PAX record length {0:?}")]
    BadLength(String),
    /// The length runs past the body, or is shorter than its own digits.
    #[error("PAX record length {0} does not fit its header")]
    LengthMisfit(usize),
    /// No newline at the record's end.
    #[error("PAX record not ended by a newline")]
    NoNewline,
    /// No `=` between key and value.
    #[error("PAX record without `=`")]
    NoEquals,
    /// A key that is not UTF-8.
    #[error("PAX keyword {0:?} is not UTF-8")]
    KeyNotUtf8(String),
}

/// A sparse file's map (GNU old, PAX 0.0/0.1/1.0) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseFault {
    /// An old GNU map entry whose numbers cannot be read.
    #[error("bad GNU sparse map entry")]
    GnuEntry,
    /// An old GNU map with more extension blocks than kiln reads.
    #[error("GNU sparse map too long")]
    GnuTooLong,
    /// `GNU.sparse.map` is not numbers.
    #[error("GNU.sparse.map {0:?} is not a list of numbers")]
    MapNotNumbers(String),
    /// `GNU.sparse.map` has an offset without a length.
    #[error("GNU.sparse.map {0:?} has an odd count")]
    MapOddCount(String),
    /// `GNU.sparse.offset` and `GNU.sparse.numbytes` records do not pair up.
    #[error("GNU.sparse.offset and GNU.sparse.numbytes records do not pair up")]
    Unpaired,
    /// A sparse file without `GNU.sparse.realsize`.
    #[error("PAX sparse file without a real size")]
    NoRealSize,
    /// A 1.0 map line that is not a number.
    #[error("GNU sparse 1.0 map line {0:?} is not a number")]
    Map10Line(String),
    /// A 1.0 map that declares more segments than kiln reads.
    #[error("GNU sparse 1.0 map declares {0} segments")]
    Map10Count(u64),
    /// A 1.0 map line too long to be a number.
    #[error("GNU sparse 1.0 map has a line too long for a number")]
    Map10LongLine,
    /// A 1.0 map that runs past the entry's data.
    #[error("GNU sparse 1.0 map runs past the data")]
    Map10PastData,
    /// A segment whose end does not fit 64 bits.
    #[error("sparse segment beyond 64 bits")]
    SegmentOverflow,
    /// Segments out of order, overlapping, or past the file's size.
    #[error(
        "sparse segment {offset}+{length} overlaps another or ends past the file's size {size}"
    )]
    SegmentMisplaced {
        /// The segment's offset.
        offset: u64,
        /// Its length.
        length: u64,
        /// The file's real size.
        size: u64,
    },
    /// The segments do not cover exactly the stored bytes.
    #[error("sparse map covers {covered} bytes but {stored} are stored")]
    Coverage {
        /// What the segments add up to.
        covered: u64,
        /// What the entry stores.
        stored: u64,
    },
}

impl From<PaxSyntax> for TarFault {
    fn from(e: PaxSyntax) -> Self {
        TarFault::PaxSyntax(e)
    }
}

impl From<SparseFault> for TarFault {
    fn from(e: SparseFault) -> Self {
        TarFault::Sparse(e)
    }
}
