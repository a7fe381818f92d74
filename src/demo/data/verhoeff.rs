//! The Verhoeff check digit (as on Aadhaar numbers: the 12th digit checks the first 11).

const D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

const P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

const INV: [u8; 10] = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];

/// The digit to append to `digits` so that the result is Verhoeff-valid. Characters other than
/// ASCII digits are ignored (so `"2363 4567"`-style grouping is accepted).
pub fn verhoeff_check_digit(digits: &str) -> u8 {
    let mut c = 0u8;
    let ds = digits.bytes().filter(u8::is_ascii_digit).rev();
    for (i, b) in ds.enumerate() {
        c = D[c as usize][P[(i + 1) % 8][(b - b'0') as usize] as usize];
    }
    INV[c as usize]
}

/// True when `s` is a non-empty string of ASCII digits whose last digit is its Verhoeff check digit.
pub fn verhoeff_valid(s: &str) -> bool {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut c = 0u8;
    for (i, b) in s.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

/// Check digit of the decimal number `payload` (no allocation; used on the export path).
pub(crate) fn check_digit_u64(mut payload: u64) -> u8 {
    let mut c = 0u8;
    let mut i = 0;
    loop {
        c = D[c as usize][P[(i + 1) % 8][(payload % 10) as usize] as usize];
        payload /= 10;
        i += 1;
        if payload == 0 {
            return INV[c as usize];
        }
    }
}
