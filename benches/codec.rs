//! The PDU codec on the hottest message: `IMMsgData` (CID_MSG_DATA) with a 100-byte text and
//! 12 bytes of attach_data, 146 bytes on the wire.
//!
//! * `encode`: `encode_command_into` into a reused `Vec` (header and body in place);
//! * `decode`: `peek_frame` + `Pdu::from_frame` + `decode_body` (the owning `Pdu` path, one body
//!   copy);
//! * `decode_in_place`: `peek_frame` + prost decode straight from the receive buffer (what a
//!   server does on its own input buffer);
//! * `decoder_stream`: a `Decoder` fed 1000 such PDUs in 4 KiB chunks, popping every whole PDU
//!   after each push (framing and body copies only, no protobuf decoding).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_proto::pdu::{self, DEFAULT_MAX_PDU_LEN, HEADER_LEN};
use tt_proto::prost::Message;
use tt_proto::{Command, Decoder, Pdu};

const STREAM_PDUS: usize = 1000;
const CHUNK: usize = 4096;

fn msg_data(msg_id: u32) -> ImMsgData {
    ImMsgData {
        from_user_id: 100_001,
        to_session_id: 100_002,
        msg_id,
        create_time: 1_700_000_000,
        msg_type: MsgType::SingleText as i32,
        msg_data: (0..100u8).map(|i| b'a' + i % 26).collect(),
        attach_data: Some((0..12).collect()),
    }
}

#[inline]
fn decode(buf: &[u8]) -> ImMsgData {
    let header = pdu::peek_frame(buf, DEFAULT_MAX_PDU_LEN)
        .expect("well framed")
        .expect("a whole PDU");
    Pdu::from_frame(buf, header)
        .decode_body()
        .expect("a valid body")
}

#[inline]
fn decode_in_place(buf: &[u8]) -> ImMsgData {
    let header = pdu::peek_frame(buf, DEFAULT_MAX_PDU_LEN)
        .expect("well framed")
        .expect("a whole PDU");
    ImMsgData::decode(&buf[HEADER_LEN..header.length as usize]).expect("a valid body")
}

/// Feeds `stream` to `dec` in `CHUNK`-byte pieces; returns the number of PDUs popped.
#[inline]
fn decode_stream(dec: &mut Decoder, stream: &[u8]) -> usize {
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        dec.push(chunk);
        while let Some(pdu) = dec.next_pdu().expect("well framed") {
            black_box(&pdu);
            n += 1;
        }
    }
    n
}

fn codec(c: &mut Criterion) {
    let msg = msg_data(7);
    let wire = Pdu::command(3, &msg).to_bytes();
    let len = wire.len() as u64;

    // The invariants, checked once outside the measurement.
    let mut out = Vec::new();
    pdu::encode_command_into(&mut out, 3, &msg);
    assert_eq!(out, wire, "in-place encoding matches the owning Pdu's");
    let header = tt_proto::Header::parse(wire[..HEADER_LEN].try_into().expect("16 bytes"));
    assert_eq!(
        (header.command_id, header.seq_num, header.length as u64),
        (ImMsgData::COMMAND_ID, 3, len)
    );
    assert_eq!(decode(&wire), msg);
    assert_eq!(decode_in_place(&wire), msg);

    let mut stream = Vec::new();
    for i in 0..STREAM_PDUS {
        pdu::encode_command_into(&mut stream, i as u16, &msg_data(i as u32));
    }
    let mut dec = Decoder::default();
    let mut popped = Vec::new();
    for chunk in stream.chunks(CHUNK) {
        dec.push(chunk);
        while let Some(pdu) = dec.next_pdu().expect("well framed") {
            popped.push(pdu);
        }
    }
    assert_eq!(popped.len(), STREAM_PDUS);
    assert_eq!(dec.buffered(), 0);
    for (i, pdu) in popped.iter().enumerate() {
        assert_eq!(pdu.header.seq_num, i as u16);
        assert_eq!(
            pdu.decode_body::<ImMsgData>().expect("body"),
            msg_data(i as u32)
        );
    }

    let mut g = c.benchmark_group("codec_msg_data");
    g.throughput(Throughput::Bytes(len));
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            pdu::encode_command_into(&mut out, 3, black_box(&msg));
            black_box(&out);
        })
    });
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&wire))));
    g.bench_function("decode_in_place", |b| {
        b.iter(|| decode_in_place(black_box(&wire)))
    });

    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decoder_stream", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut n = 0;
            for _ in 0..iters {
                n += decode_stream(&mut dec, black_box(&stream));
            }
            let elapsed = start.elapsed();
            assert_eq!(n as u64, iters * STREAM_PDUS as u64, "every PDU popped");
            assert_eq!(dec.buffered(), 0);
            elapsed
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec
}
criterion_main!(benches);
