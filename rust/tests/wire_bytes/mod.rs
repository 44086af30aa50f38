//! Protobuf wire bytes written by hand.

/// The varint encoding of `v`: 7 bits a byte, least significant first.
pub fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}
