//! The word-at-a-time key comparison against slice equality, at every length and every position
//! of a difference.

use super::same;

#[test]
fn same_is_slice_equality() {
    for n in 0..40usize {
        let a: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        assert!(same(&a, &a.clone()), "equal, length {n}");
        for at in 0..n {
            for flip in [1u8, 0x80, 0xFF] {
                let mut b = a.clone();
                b[at] ^= flip;
                assert!(!same(&a, &b), "differ at {at} of {n} by {flip:#x}");
            }
        }
        let mut longer = a.clone();
        longer.push(0);
        assert!(!same(&a, &longer) && !same(&longer, &a), "lengths {n} and {}", n + 1);
    }
}
