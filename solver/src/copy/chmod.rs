//! `--chmod`: an octal mode, or a chmod(1) symbolic mode as BuildKit accepts it.
//!
//! BuildKit first tries the value as octal (up to 07777) and otherwise hands it to a Go port
//! of BSD's `setmode(3)` (`tonistiigi/dchapes-mode`); this is a port of the same rules.
//! Clauses without a `who` (`+x`, `=rw`) are masked by the umask as `setmode` does; BuildKit
//! reads its daemon's umask there, kiln fixes it at the usual 022 so a build does not depend
//! on the umask of whoever runs it.

use super::error::CopyError;

const SET_UID: u32 = 0o4000;
const SET_GID: u32 = 0o2000;
const STICKY: u32 = 0o1000;
const USER_BITS: u32 = 0o700;
const GROUP_BITS: u32 = 0o070;
const OTHER_BITS: u32 = 0o007;
const READ: u32 = 0o444;
const WRITE: u32 = 0o222;
const EXEC: u32 = 0o111;
/// `setmode`'s STANDARD_BITS: everything but the sticky bit.
const STANDARD: u32 = SET_UID | SET_GID | USER_BITS | GROUP_BITS | OTHER_BITS;
/// The umask symbolic clauses without a `who` are masked with.
const UMASK: u32 = 0o022;

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChmodSpec {
    /// An octal mode: permission bits plus setuid, setgid and sticky, applied as they are.
    Octal(u32),
    /// A symbolic mode, applied to each entry's own mode.
    Symbolic(Vec<ModeOp>),
}

/// One step of a symbolic mode, as `setmode(3)` compiles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeOp {
    /// Set these bits.
    Add(u32),
    /// Clear these bits.
    Remove(u32),
    /// Set these execute bits if the entry is a directory or already executable by anyone.
    AddIfExecutable(u32),
    /// Copy the bits of one class (`u`, `g` or `o`) to others, as in `g=u-w`.
    CopyClass {
        /// The class copied from: `b'u'`, `b'g'` or `b'o'`.
        from: u8,
        /// The classes and bits written to.
        mask: u32,
        /// Which classes are written: user, group, other.
        to: [bool; 3],
        /// Clear the target bits first (`-` or `=`).
        clear: bool,
        /// Set the copied bits (`+` or `=`).
        set: bool,
    },
}

impl ChmodSpec {
    /// The mode `mode` (permission and special bits) becomes; `is_dir` matters for `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Self::Octal(bits) => bits & 0o7777,
            Self::Symbolic(ops) => apply_ops(ops, mode & 0o7777, is_dir),
        }
    }
}

/// Parses a `--chmod` value with BuildKit's rules and error messages.
pub fn parse_chmod(spec: &str) -> Result<ChmodSpec, CopyError> {
    let not_octal = || CopyError::ChmodNotOctal {
        spec: spec.to_owned(),
    };
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        // Go's ParseUint(s, 8, 32) followed by the 07777 bound.
        return match u32::from_str_radix(spec, 8) {
            Ok(bits) if bits <= 0o7777 => Ok(ChmodSpec::Octal(bits)),
            _ => Err(not_octal()),
        };
    }
    // Anything else starting with a digit is a failed number to setmode, and BuildKit
    // reports it with the octal message.
    if spec.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(not_octal());
    }
    parse_symbolic(spec)
        .map(ChmodSpec::Symbolic)
        .ok_or_else(|| CopyError::ChmodSyntax {
            spec: spec.to_owned(),
        })
}

/// `setmode(3)`'s compiler; `None` for a syntax error.
fn parse_symbolic(spec: &str) -> Option<Vec<ModeOp>> {
    let mask = !UMASK;
    let mut ops = Vec::new();
    let mut rest = spec.as_bytes();
    loop {
        let mut who = 0;
        while let Some((&c, tail)) = rest.split_first() {
            who |= match c {
                b'a' => STANDARD,
                b'u' => SET_UID | USER_BITS,
                b'g' => SET_GID | GROUP_BITS,
                b'o' => OTHER_BITS,
                _ => break,
            };
            rest = tail;
        }
        // One or more operators may follow a `who` list: `u+x-w`.
        loop {
            let (&op, tail) = rest.split_first()?;
            if !matches!(op, b'+' | b'-' | b'=') {
                return None;
            }
            rest = tail;
            let mut equal_done = false;
            let mut who = who;
            let mut perm = 0;
            let mut perm_x = 0;
            loop {
                match rest.first() {
                    Some(b'r') => perm |= READ,
                    Some(b'w') => perm |= WRITE,
                    Some(b'x') => perm |= EXEC,
                    Some(b'X') if op == b'+' => perm_x = EXEC,
                    Some(b'X') => {}
                    // set-id and sticky mean nothing for "other" alone.
                    Some(b's') if who == 0 || who & !OTHER_BITS != 0 => perm |= SET_UID | SET_GID,
                    Some(b't') if who == 0 || who & !OTHER_BITS != 0 => {
                        who |= STICKY;
                        perm |= STICKY;
                    }
                    Some(b's' | b't') => {}
                    Some(&class @ (b'u' | b'g' | b'o')) => {
                        if perm != 0 {
                            push(&mut ops, op, who, perm, mask);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_done = true;
                        }
                        if perm_x != 0 {
                            push(&mut ops, b'X', who, perm_x, mask);
                            perm_x = 0;
                        }
                        push_copy(&mut ops, class, who, op, mask);
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !equal_done) {
                            push(&mut ops, op, who, perm, mask);
                        }
                        if perm_x != 0 {
                            push(&mut ops, b'X', who, perm_x, mask);
                        }
                        break;
                    }
                }
                rest = rest.get(1..)?;
            }
            match rest.first() {
                None => return Some(ops),
                Some(b',') => {
                    rest = rest.get(1..)?;
                    break;
                }
                Some(_) => {}
            }
        }
        // A trailing comma leaves nothing to parse, which setmode refuses.
        rest.first()?;
    }
}

/// `addcmd` for `+`, `-`, `=` and `X`: the bits limited to `who`, or to the umask without one.
fn push(ops: &mut Vec<ModeOp>, op: u8, who: u32, perm: u32, mask: u32) {
    let limit = if who != 0 { who } else { mask };
    match op {
        b'=' => {
            ops.push(ModeOp::Remove(if who != 0 { who } else { STANDARD }));
            ops.push(ModeOp::Add(limit & perm));
        }
        b'+' => ops.push(ModeOp::Add(limit & perm)),
        b'-' => ops.push(ModeOp::Remove(limit & perm)),
        _ => ops.push(ModeOp::AddIfExecutable(limit & perm)),
    }
}

/// `addcmd` for a class copy such as the `u` in `g=u`.
fn push_copy(ops: &mut Vec<ModeOp>, from: u8, who: u32, op: u8, mask: u32) {
    let (to, bits) = if who != 0 {
        (
            [who & 0o400 != 0, who & 0o040 != 0, who & 0o004 != 0],
            u32::MAX,
        )
    } else {
        ([true; 3], mask)
    };
    ops.push(ModeOp::CopyClass {
        from,
        mask: bits,
        to,
        clear: op != b'+',
        set: op != b'-',
    });
}

fn apply_ops(ops: &[ModeOp], original: u32, is_dir: bool) -> u32 {
    let mut mode = original;
    for op in ops {
        match *op {
            ModeOp::Add(bits) => mode |= bits,
            ModeOp::Remove(bits) => mode &= !bits,
            ModeOp::AddIfExecutable(bits) => {
                // setmode looks at the mode before any change, not at the running result.
                if original & EXEC != 0 || is_dir {
                    mode |= bits;
                }
            }
            ModeOp::CopyClass {
                from,
                mask,
                to,
                clear,
                set,
            } => {
                let value = match from {
                    b'u' => (mode & USER_BITS) >> 6,
                    b'g' => (mode & GROUP_BITS) >> 3,
                    _ => mode & OTHER_BITS,
                };
                let shifts = [6, 3, 0];
                if clear {
                    let cleared = if set { 0o7 } else { value };
                    for (on, shift) in to.iter().zip(shifts) {
                        if *on {
                            mode &= !((cleared << shift) & mask);
                        }
                    }
                }
                if set {
                    for (on, shift) in to.iter().zip(shifts) {
                        if *on {
                            mode |= (value << shift) & mask;
                        }
                    }
                }
            }
        }
    }
    mode & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(spec: &str, mode: u32, is_dir: bool) -> u32 {
        parse_chmod(spec).unwrap().apply(mode, is_dir)
    }

    #[test]
    fn octal_values() {
        assert_eq!(parse_chmod("0755").unwrap(), ChmodSpec::Octal(0o755));
        assert_eq!(parse_chmod("4755").unwrap().apply(0o644, false), 0o4755);
        assert_eq!(parse_chmod("7777").unwrap(), ChmodSpec::Octal(0o7777));
        assert_eq!(parse_chmod("0").unwrap(), ChmodSpec::Octal(0));
        for bad in ["17777", "0855", "8", "0o755", "99999999999"] {
            let err = parse_chmod(bad).unwrap_err();
            assert!(matches!(err, CopyError::ChmodNotOctal { .. }), "{bad}");
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
                )
            );
        }
    }

    #[test]
    fn symbolic_values_like_chmod() {
        // Expected values are what GNU chmod gives with umask 022.
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("g-w", 0o775, false), 0o755);
        assert_eq!(sym("go-w", 0o777, false), 0o755);
        assert_eq!(sym("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(sym("u=rw,g=r,o=r", 0o777, false), 0o644);
        assert_eq!(sym("a+X", 0o644, false), 0o644);
        assert_eq!(sym("a+X", 0o744, false), 0o755);
        assert_eq!(sym("a+X", 0o700, true), 0o711);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(
            sym("+w", 0o444, false),
            0o644,
            "umask keeps group/other write off"
        );
        assert_eq!(sym("a+w", 0o444, false), 0o666);
        assert_eq!(sym("=r", 0o4777, false), 0o444);
        assert_eq!(sym("go=", 0o777, false), 0o700);
        assert_eq!(sym("g=u", 0o740, false), 0o770);
        assert_eq!(sym("go=u-w", 0o755, false), 0o755);
        assert_eq!(sym("u=rwx,go=u-w", 0o600, false), 0o755);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("g+s", 0o755, true), 0o2755);
        assert_eq!(sym("+t", 0o777, true), 0o1777);
        assert_eq!(
            sym("o+t", 0o777, true),
            0o777,
            "sticky needs more than other"
        );
        assert_eq!(sym("u+x-w", 0o644, false), 0o544);
        assert_eq!(sym("a-x,u+x", 0o777, false), 0o766);
    }

    #[test]
    fn symbolic_syntax_errors() {
        for bad in ["", "u", "u+x,", "z+x", "u+x,,g+w", "+755", "u+q", "ug"] {
            let err = parse_chmod(bad).unwrap_err();
            assert!(matches!(err, CopyError::ChmodSyntax { .. }), "{bad}: {err}");
        }
    }
}
