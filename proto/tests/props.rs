//! Property tests of the framing (`peek_frame`, `Decoder`) and the attach-data codec on
//! arbitrary bytes and arbitrary splits into chunks: no panic, what decodes re-encodes to the
//! bytes it came from, and a stream cut anywhere decodes to the PDUs of the whole stream.

use proptest::collection::vec;
use proptest::prelude::*;
use tt_proto::attach::{
    DB_ATTACH_LEN, DbAttachData, PDU_ATTACH_HEADER_LEN, PduAttachData, split_pdu_attach,
};
use tt_proto::pdu::{HEADER_LEN, peek_frame};
use tt_proto::{Decoder, FrameError, Header, Pdu};

/// The limit of the framing properties: small, so that arbitrary length fields also land
/// below it, at it and above it.
const MAX_LEN: u32 = 512;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn header() -> impl Strategy<Value = Header> {
    (any::<[u16; 6]>()).prop_map(|f| Header {
        length: 0,
        version: f[0],
        flag: f[1],
        service_id: f[2],
        command_id: f[3],
        seq_num: f[4],
        reserved: f[5],
    })
}

/// A PDU whose encoding fits [`MAX_LEN`].
fn pdu() -> impl Strategy<Value = Pdu> {
    (
        header(),
        vec(any::<u8>(), 0..=(MAX_LEN as usize - HEADER_LEN)),
    )
        .prop_map(|(h, body)| Pdu::with_header(h, body))
}

/// Pieces of a byte stream: whole PDUs, PDUs with their length field overwritten, and noise.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => pdu().prop_map(|p| p.to_bytes()),
        1 => (pdu(), any::<u32>()).prop_map(|(p, length)| {
            let mut b = p.to_bytes();
            b[..4].copy_from_slice(&length.to_be_bytes());
            b
        }),
        1 => (pdu(), 0..(MAX_LEN + 64)).prop_map(|(p, length)| {
            let mut b = p.to_bytes();
            b[..4].copy_from_slice(&length.to_be_bytes());
            b
        }),
        1 => vec(any::<u8>(), 0..64),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    vec(piece(), 0..6).prop_map(|pieces| pieces.concat())
}

/// Cut points for a stream: offsets (taken modulo the stream length, sorted).
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    vec(any::<usize>(), 0..12)
}

/// `bytes` cut at `cuts` (modulo its length) into consecutive chunks.
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for to in at.into_iter().chain([bytes.len()]) {
        out.push(&bytes[from..to]);
        from = to;
    }
    out
}

/// What a stream frames to, read at once with `peek_frame`: the PDUs, the bytes they took and
/// the error that ends the stream, if any.
fn frame_whole(bytes: &[u8], max_len: u32) -> (Vec<Pdu>, usize, Option<FrameError>) {
    let mut pdus = Vec::new();
    let mut at = 0;
    loop {
        match peek_frame(&bytes[at..], max_len) {
            Ok(Some(h)) => {
                pdus.push(Pdu::from_frame(&bytes[at..], h));
                at += h.length as usize;
            }
            Ok(None) => return (pdus, at, None),
            Err(e) => return (pdus, at, Some(e)),
        }
    }
}

/// What a `Decoder` gives for the chunks, fed one at a time and drained after each.
fn decode_chunks(chunks: &[&[u8]], max_len: u32) -> (Vec<Pdu>, Option<FrameError>, Decoder) {
    let mut d = Decoder::new(max_len);
    let mut pdus = Vec::new();
    let mut error = None;
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_pdu() {
                Ok(Some(p)) => pdus.push(p),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_some() {
            break;
        }
    }
    (pdus, error, d)
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes at every limit: no panic, and only a length within the limits frames.
    #[test]
    fn peek_frame_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..64), max_len in any::<u32>()) {
        match peek_frame(&bytes, max_len) {
            Ok(Some(h)) => {
                prop_assert!(h.length as usize >= HEADER_LEN && h.length <= max_len);
                prop_assert!(h.length as usize <= bytes.len());
                prop_assert_eq!(&h.to_bytes()[..], &bytes[..HEADER_LEN]);
            }
            Ok(None) => {
                if let Some(head) = bytes.first_chunk::<HEADER_LEN>() {
                    let h = Header::parse(head);
                    prop_assert!(h.length as usize > bytes.len() && h.length <= max_len);
                }
            }
            Err(FrameError::TooShort(n)) => prop_assert!((n as usize) < HEADER_LEN),
            Err(FrameError::TooLong { length, max }) => {
                prop_assert_eq!(max, max_len);
                prop_assert!(length > max_len);
            }
        }
    }

    /// A stream of PDUs and noise, split anywhere: the decoder gives what framing the whole
    /// stream at once gives, each PDU re-encodes to the bytes it came from, and what is left
    /// buffered is the unframed tail.
    #[test]
    fn decoder_on_arbitrary_streams_and_splits(bytes in stream(), cuts in cuts()) {
        let (whole, used, whole_error) = frame_whole(&bytes, MAX_LEN);
        let (pdus, error, d) = decode_chunks(&chunks(&bytes, &cuts), MAX_LEN);
        prop_assert_eq!(&pdus, &whole);
        prop_assert_eq!(error, whole_error);
        prop_assert_eq!(d.error(), whole_error);
        let encoded: Vec<u8> = pdus.iter().flat_map(Pdu::to_bytes).collect();
        prop_assert_eq!(&encoded[..], &bytes[..used]);
        for p in &pdus {
            prop_assert!(p.header.length <= MAX_LEN);
            prop_assert_eq!(p.header.length as usize, p.encoded_len());
        }
        if whole_error.is_none() {
            prop_assert_eq!(d.buffered(), bytes.len() - used);
            // The tail is less than one PDU (a whole one would have framed).
            prop_assert!(d.buffered() < MAX_LEN as usize);
        } else {
            prop_assert_eq!(d.buffered(), 0);
        }
    }

    /// Valid PDUs cut at any points come out whole, equal and in order; an incomplete PDU is
    /// never handed out.
    #[test]
    fn valid_pdus_cut_anywhere(pdus in vec(pdu(), 0..8), cuts in cuts()) {
        let bytes: Vec<u8> = pdus.iter().flat_map(Pdu::to_bytes).collect();
        let (got, error, d) = decode_chunks(&chunks(&bytes, &cuts), MAX_LEN);
        prop_assert_eq!(error, None);
        prop_assert_eq!(&got, &pdus);
        prop_assert_eq!(d.buffered(), 0);
        for p in &got {
            let b = p.to_bytes();
            // Every strict prefix asks for more bytes.
            for cut in [0, 1, HEADER_LEN - 1, HEADER_LEN, b.len() - 1] {
                if cut < b.len() {
                    prop_assert_eq!(peek_frame(&b[..cut], MAX_LEN), Ok(None));
                }
            }
        }
    }

    /// Pushing after an error changes nothing: the decoder stays failed and holds nothing.
    #[test]
    fn a_failed_decoder_stays_failed(
        length in prop_oneof![0..HEADER_LEN as u32, (MAX_LEN + 1)..=u32::MAX],
        more in vec(any::<u8>(), 0..64),
    ) {
        let mut d = Decoder::new(MAX_LEN);
        let head = Header { length, ..Header::default() };
        d.push(&head.to_bytes());
        let e = d.next_pdu().expect_err("a bad length");
        d.push(&more);
        prop_assert_eq!(d.next_pdu(), Err(e));
        prop_assert_eq!(d.buffered(), 0);
    }

    /// `DbAttachData`: arbitrary bytes decode iff there are 12, to their first 12; records
    /// round-trip.
    #[test]
    fn db_attach_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..40), rec in any::<[u32; 3]>()) {
        match DbAttachData::decode(&bytes) {
            Ok(a) => prop_assert_eq!(&a.to_bytes()[..], &bytes[..DB_ATTACH_LEN]),
            Err(_) => prop_assert!(bytes.len() < DB_ATTACH_LEN),
        }
        let a = DbAttachData { attach_type: rec[0], handle: rec[1], service_type: rec[2] };
        prop_assert_eq!(DbAttachData::decode(&a.to_vec()), Ok(a));
    }

    /// `PduAttachData` on arbitrary bytes: what decodes re-encodes to the record's bytes
    /// (header and announced body; later bytes are ignored), and the borrowing and copying
    /// decoders agree.
    #[test]
    fn pdu_attach_on_arbitrary_bytes(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..80),
            // A small announced N, so that whole records are frequent.
            (any::<[u8; 12]>(), 0u32..48, vec(any::<u8>(), 0..64)).prop_map(|(h, n, rest)| {
                [&h[..], &n.to_be_bytes(), &rest].concat()
            }),
        ],
    ) {
        let split = split_pdu_attach(&bytes);
        let copied = PduAttachData::decode(&bytes);
        match (split, copied) {
            (Ok((head, body)), Ok(rec)) => {
                prop_assert_eq!(rec.head(), head);
                prop_assert_eq!(&rec.pdu[..], body);
                let encoded = rec.to_vec();
                prop_assert_eq!(encoded.len(), PDU_ATTACH_HEADER_LEN + body.len());
                prop_assert_eq!(&encoded[..], &bytes[..encoded.len()]);
                // Its first 12 bytes are a DbAttachData as well.
                prop_assert_eq!(DbAttachData::decode(&bytes), Ok(head));
            }
            (Err(a), Err(b)) => {
                prop_assert_eq!(a, b);
                let n = bytes
                    .get(12..16)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                prop_assert!(
                    bytes.len() < PDU_ATTACH_HEADER_LEN
                        || (bytes.len() as u64) < PDU_ATTACH_HEADER_LEN as u64 + u64::from(n)
                );
            }
            (split, copied) => prop_assert!(false, "the decoders disagree: {split:?} / {copied:?}"),
        }
    }

    /// A record round-trips; cut short anywhere it is refused, never misread.
    #[test]
    fn pdu_attach_round_trip_and_truncation(
        rec in any::<[u32; 3]>(),
        body in vec(any::<u8>(), 0..64),
        cut in any::<usize>(),
    ) {
        let rec = PduAttachData {
            attach_type: rec[0],
            handle: rec[1],
            service_type: rec[2],
            pdu: body,
        };
        let bytes = rec.to_vec();
        prop_assert_eq!(PduAttachData::decode(&bytes), Ok(rec.clone()));
        let cut = cut % bytes.len();
        prop_assert!(PduAttachData::decode(&bytes[..cut]).is_err());
        prop_assert!(split_pdu_attach(&bytes[..cut]).is_err());
    }
}
