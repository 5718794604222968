//! The y-websocket protocol as far as the load generator needs it, without
//! allocating: message framing (plain y-websocket or Hocuspocus, which
//! prefixes every message with the document name), the lean clients'
//! hand-encoded Yjs updates, and a parser that finds which (client, clock)
//! ranges an update carries.

pub const MSG_SYNC: u64 = 0;
pub const MSG_AWARENESS: u64 = 1;
pub const MSG_AUTH: u64 = 2;
/// Hocuspocus: a sync message that does not ask for another step 1.
pub const MSG_SYNC_REPLY: u64 = 4;
/// Hocuspocus: the acknowledgement of an applied update.
pub const MSG_SYNC_STATUS: u64 = 8;
pub const SYNC_STEP1: u64 = 0;
pub const SYNC_STEP2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;

/// The root map every lean client edits.
pub const ROOT_MAP: &str = "form";

pub fn write_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over a byte slice; every read returns `None` past the end.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn var(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift > 63 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
    }

    pub fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }

    pub fn var_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.var()?).ok()?;
        let start = self.pos;
        self.skip(n)?;
        Some(&self.buf[start..self.pos])
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }
}

/// How messages are put in frames.
#[derive(Clone, Debug)]
pub enum Framing {
    /// y-websocket: one message per frame, the document is the URL path.
    Plain,
    /// Hocuspocus: every message starts with the document name as a
    /// varstring; a client authenticates each document first.
    Hocuspocus { prefix: Vec<u8> },
}

impl Framing {
    pub fn for_doc(hocuspocus: bool, doc: &str) -> Framing {
        if hocuspocus {
            let mut prefix = Vec::with_capacity(doc.len() + 2);
            write_var_bytes(&mut prefix, doc.as_bytes());
            Framing::Hocuspocus { prefix }
        } else {
            Framing::Plain
        }
    }

    /// Starts a message in `out` (which the caller has cleared).
    pub fn begin(&self, out: &mut Vec<u8>) {
        if let Framing::Hocuspocus { prefix } = self {
            out.extend_from_slice(prefix);
        }
    }

    /// The message inside a received frame.
    pub fn strip<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Framing::Plain => Some(frame),
            Framing::Hocuspocus { .. } => {
                let mut r = Reader::new(frame);
                r.var_bytes()?;
                Some(r.rest())
            }
        }
    }

    pub fn is_hocuspocus(&self) -> bool {
        matches!(self, Framing::Hocuspocus { .. })
    }
}

/// The messages a client sends when it opens a document: the Hocuspocus
/// token message (empty token, as the provider sends without auth), then a
/// sync step 1 with an empty state vector.
pub fn opening_messages(framing: &Framing) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if framing.is_hocuspocus() {
        let mut m = Vec::new();
        framing.begin(&mut m);
        write_var(&mut m, MSG_AUTH);
        write_var(&mut m, 0); // token
        write_var_bytes(&mut m, b"");
        out.push(m);
    }
    let mut m = Vec::new();
    framing.begin(&mut m);
    write_var(&mut m, MSG_SYNC);
    write_var(&mut m, SYNC_STEP1);
    write_var_bytes(&mut m, &[0]); // empty state vector
    out.push(m);
    out
}

/// A sync step 2 with an empty update: what a client with nothing to add
/// answers to the server's step 1.
pub fn empty_step2(framing: &Framing, out: &mut Vec<u8>) {
    framing.begin(out);
    write_var(out, MSG_SYNC);
    write_var(out, SYNC_STEP2);
    write_var_bytes(out, &[0, 0]);
}

/// The Yjs client id of lean client `index` (global over all rooms). Kept
/// well below 2^32 like the ids Yjs picks itself.
pub fn client_id(index: usize) -> u64 {
    1_000_000 + index as u64
}

/// The field a lean client edits: its own key in the root map.
pub fn field_key(index_in_room: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"field-");
    push_decimal(out, index_in_room as u64);
}

/// Appends `v` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// What a lean client's edits change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Edits {
    /// Its own key of the root map `form`, outside the form model.
    Root,
    /// The `label` of its own component of the form (`components.field-<i>`),
    /// which the server's schema check looks at on every edit. The
    /// components are created first by one seeding update per document
    /// ([`encode_seed`]).
    Component,
}

impl Edits {
    pub fn name(self) -> &'static str {
        match self {
            Edits::Root => "root",
            Edits::Component => "component",
        }
    }
}

/// The root map of a form's components.
pub const COMPONENTS_MAP: &str = "components";

/// Structs one seeded component takes: its map, then its `id`, `type`,
/// `label`, `index` and `parent` entries.
const SEED_STRUCTS: u64 = 6;
/// The clock of a seeded component's `label` entry, from its first clock.
const SEED_LABEL: u64 = 3;

/// The Yjs client id that seeds room `room`'s components. Below every
/// lean client's id (see [`client_id`]).
pub fn seed_client_id(room: usize) -> u64 {
    100_000 + room as u64
}

/// Whether `client` is a seeding client id.
pub fn is_seed_client(client: u64) -> bool {
    (100_000..1_000_000).contains(&client)
}

/// The clocks a seeding update for `clients` components takes.
pub fn seed_len(clients: usize) -> u64 {
    clients as u64 * SEED_STRUCTS
}

/// Where one lean client's edit goes.
#[derive(Clone, Copy, Debug)]
pub enum EditTarget<'a> {
    /// `form.set(key, value)`.
    Root { key: &'a [u8] },
    /// `components.get(field-<index>).set("label", value)`, the component
    /// seeded by client `seed`.
    Label { seed: u64, index: usize },
}

/// Encodes (v1) the update that creates `clients` valid text components,
/// `components.field-<i>` for i in 0..clients, each a Y.Map with `id`,
/// `type`, `label`, `index` and `parent`, all by client `seed`. Appends a
/// sync update message. Every client of a room may send it: applying it
/// again changes nothing.
pub fn encode_seed(out: &mut Vec<u8>, seed: u64, clients: usize, scratch: &mut Vec<u8>) {
    scratch.clear();
    let u = scratch;
    let mut key = Vec::with_capacity(16);
    write_var(u, 1); // clients with structs
    write_var(u, seed_len(clients));
    write_var(u, seed);
    write_var(u, 0); // first clock
    for i in 0..clients {
        let map_clock = i as u64 * SEED_STRUCTS;
        key.clear();
        field_key(i, &mut key);
        u.push(0x20 | 7); // parentSub, ContentType
        write_var(u, 1); // parent is a root type, by name
        write_var_bytes(u, COMPONENTS_MAP.as_bytes());
        write_var_bytes(u, &key);
        write_var(u, 1); // Y.Map
        let mut label = b"Field ".to_vec();
        push_decimal(&mut label, i as u64);
        let mut index = b"a".to_vec();
        push_decimal(&mut index, i as u64);
        let fields: [(&[u8], Option<&[u8]>); 5] = [
            (b"id", Some(&key)),
            (b"type", Some(b"text")),
            (b"label", Some(&label)),
            (b"index", Some(&index)),
            (b"parent", None),
        ];
        for (name, value) in fields {
            u.push(0x20 | 8); // parentSub, ContentAny
            write_var(u, 0); // parent is an item: the component's map
            write_var(u, seed);
            write_var(u, map_clock);
            write_var_bytes(u, name);
            write_var(u, 1); // one value
            match value {
                Some(v) => {
                    u.push(119); // string
                    write_var_bytes(u, v);
                }
                None => u.push(126), // null
            }
        }
    }
    write_var(u, 0); // no deletions
    write_var(out, MSG_SYNC);
    write_var(out, SYNC_UPDATE);
    write_var_bytes(out, u);
}

/// Encodes (v1) the `seq`-th edit of lean client `client`: it sets its
/// target (its own key of the root map, or its component's label) to a
/// string of `value_len` bytes that ends with the sequence number. This is
/// exactly the update a Yjs client produces for that `set`: one item of one
/// clock, whose origin is the previous value of that key, plus the deletion
/// of that value. Appends a sync update message.
pub fn encode_edit(
    out: &mut Vec<u8>,
    client: u64,
    target: EditTarget<'_>,
    seq: u64,
    value_len: usize,
    scratch: &mut Vec<u8>,
) {
    scratch.clear();
    let u = scratch;
    write_var(u, 1); // clients with structs
    write_var(u, 1); // structs of this client
    write_var(u, client);
    write_var(u, seq); // clock of the first struct
                       // The value this edit replaces: the client's own previous one, or the
                       // seeded label before the first edit of a component; none before the
                       // first edit of a root key.
    let previous = match target {
        EditTarget::Root { key } if seq == 0 => {
            u.push(0x20 | 8); // parentSub, ContentAny
            write_var(u, 1); // parent is a root type, by name
            write_var_bytes(u, ROOT_MAP.as_bytes());
            write_var_bytes(u, key);
            None
        }
        EditTarget::Label { seed, index } if seq == 0 => {
            Some((seed, index as u64 * SEED_STRUCTS + SEED_LABEL))
        }
        _ => Some((client, seq - 1)),
    };
    if let Some((c, clock)) = previous {
        u.push(0x80 | 0x20 | 8); // origin, parentSub, ContentAny
        write_var(u, c);
        write_var(u, clock);
    }
    write_var(u, 1); // one value
    u.push(119); // string
    let (value, len) = edit_value_bytes(seq, value_len);
    write_var_bytes(u, &value[..len]);
    // Delete set: the replaced value.
    match previous {
        None => write_var(u, 0),
        Some((c, clock)) => {
            write_var(u, 1);
            write_var(u, c);
            write_var(u, 1);
            write_var(u, clock);
            write_var(u, 1);
        }
    }
    write_var(out, MSG_SYNC);
    write_var(out, SYNC_UPDATE);
    write_var_bytes(out, u);
}

/// The value `encode_edit` writes for `seq`: `value_len` bytes (1 to 64)
/// of `x` ending with the decimal sequence number.
fn edit_value_bytes(seq: u64, value_len: usize) -> ([u8; 64], usize) {
    let mut value = [b'x'; 64];
    let len = value_len.clamp(1, 64);
    let mut n = seq;
    let mut i = len;
    loop {
        i -= 1;
        value[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    (value, len)
}

/// The value `encode_edit` writes for `seq`, for checking documents.
pub fn edit_value(seq: u64, value_len: usize) -> String {
    let (value, len) = edit_value_bytes(seq, value_len);
    String::from_utf8_lossy(&value[..len]).into_owned()
}

/// One client's run of structs inside an update: clocks `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockRange {
    pub client: u64,
    pub start: u64,
    pub end: u64,
}

/// Calls `f` with every (client, clock range) of a v1 update's structs.
/// Handles whatever a server may send: merged updates with several clients
/// and structs, GC and skip ranges, any content type. Returns `None` if
/// the update does not parse.
pub fn update_ranges(update: &[u8], mut f: impl FnMut(ClockRange)) -> Option<()> {
    let mut r = Reader::new(update);
    let clients = r.var()?;
    for _ in 0..clients {
        let structs = r.var()?;
        let client = r.var()?;
        let mut start = r.var()?;
        let mut clock = start;
        for _ in 0..structs {
            let info = r.byte()?;
            let len = struct_len(&mut r, info)?;
            if info & 0x1f == 10 {
                // A skip is a hole, not content: close the range before it.
                if clock > start {
                    f(ClockRange {
                        client,
                        start,
                        end: clock,
                    });
                }
                start = clock + len;
            }
            clock += len;
        }
        if clock > start {
            f(ClockRange {
                client,
                start,
                end: clock,
            });
        }
    }
    Some(())
}

/// Reads one struct after its info byte; returns its length in clocks.
fn struct_len(r: &mut Reader<'_>, info: u8) -> Option<u64> {
    match info & 0x1f {
        0 => r.var(),  // GC
        10 => r.var(), // Skip
        content => {
            let has_origin = info & 0x80 != 0;
            let has_right = info & 0x40 != 0;
            if has_origin {
                r.var()?;
                r.var()?;
            }
            if has_right {
                r.var()?;
                r.var()?;
            }
            if !has_origin && !has_right {
                if r.var()? == 1 {
                    r.var_bytes()?; // root type name
                } else {
                    r.var()?; // parent item id
                    r.var()?;
                }
                if info & 0x20 != 0 {
                    r.var_bytes()?; // parent sub (map key)
                }
            }
            content_len(r, content)
        }
    }
}

fn content_len(r: &mut Reader<'_>, content: u8) -> Option<u64> {
    match content {
        1 => r.var(), // deleted
        2 => {
            // JSON: count + strings
            let n = r.var()?;
            for _ in 0..n {
                r.var_bytes()?;
            }
            Some(n)
        }
        3 => {
            r.var_bytes()?; // binary
            Some(1)
        }
        4 => {
            // string: length in UTF-16 code units
            let s = std::str::from_utf8(r.var_bytes()?).ok()?;
            Some(s.encode_utf16().count() as u64)
        }
        5 => {
            r.var_bytes()?; // embed (JSON string)
            Some(1)
        }
        6 => {
            r.var_bytes()?; // format key
            r.var_bytes()?; // format value (JSON string)
            Some(1)
        }
        7 => {
            // type
            let type_ref = r.var()?;
            if type_ref == 3 || type_ref == 5 {
                r.var_bytes()?; // XML element / hook name
            }
            Some(1)
        }
        8 => {
            let n = r.var()?;
            for _ in 0..n {
                skip_any(r)?;
            }
            Some(n)
        }
        9 => {
            r.var_bytes()?; // guid
            skip_any(r)?; // options
            Some(1)
        }
        _ => None,
    }
}

/// Skips one lib0 `any` value.
fn skip_any(r: &mut Reader<'_>) -> Option<()> {
    match r.byte()? {
        127 | 126 | 121 | 120 => Some(()), // undefined, null, false, true
        125 => {
            // signed varint
            while r.byte()? & 0x80 != 0 {}
            Some(())
        }
        124 => r.skip(4),
        123 | 122 => r.skip(8),
        119 | 116 => r.var_bytes().map(|_| ()),
        118 => {
            let n = r.var()?;
            for _ in 0..n {
                r.var_bytes()?;
                skip_any(r)?;
            }
            Some(())
        }
        117 => {
            let n = r.var()?;
            for _ in 0..n {
                skip_any(r)?;
            }
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::types::ToJson;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update};

    fn edit_payload(client: u64, key: &[u8], seq: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        encode_edit(
            &mut out,
            client,
            EditTarget::Root { key },
            seq,
            len,
            &mut scratch,
        );
        let mut r = Reader::new(&out);
        assert_eq!(r.var(), Some(MSG_SYNC));
        assert_eq!(r.var(), Some(SYNC_UPDATE));
        r.var_bytes().unwrap().to_vec()
    }

    #[test]
    fn lean_edits_are_what_yrs_itself_encodes() {
        let doc = Doc::with_client_id(1_000_042);
        let map = doc.get_or_insert_map(ROOT_MAP);
        let replica = Doc::new();
        let rmap = replica.get_or_insert_map(ROOT_MAP);
        for seq in 0..300u64 {
            let value = edit_value(seq, 16);
            // What a client emits for one `set`: its transaction's update.
            let want = {
                let mut txn = doc.transact_mut();
                map.insert(&mut txn, "field-7", value.as_str());
                txn.encode_update_v1()
            };
            let got = edit_payload(1_000_042, b"field-7", seq, 16);
            assert_eq!(got, want, "seq {seq}");
            let update = Update::decode_v1(&got).unwrap();
            replica.transact_mut().apply_update(update).unwrap();
            let txn = replica.transact();
            let stored = rmap.get(&txn, "field-7").unwrap().to_string(&txn);
            assert_eq!(stored, value);
            assert_eq!(txn.state_vector(), doc.transact().state_vector());
        }
        let all = StateVector::default();
        assert_eq!(
            replica.transact().encode_state_as_update_v1(&all).len(),
            doc.transact().encode_state_as_update_v1(&all).len()
        );
    }

    /// The update inside a sync update message.
    fn payload(msg: &[u8]) -> Vec<u8> {
        let mut r = Reader::new(msg);
        assert_eq!(r.var(), Some(MSG_SYNC));
        assert_eq!(r.var(), Some(SYNC_UPDATE));
        r.var_bytes().unwrap().to_vec()
    }

    #[test]
    fn component_edits_are_what_yrs_encodes_and_keep_the_form_valid() {
        let seed = seed_client_id(3);
        let (mut msg, mut scratch) = (Vec::new(), Vec::new());
        encode_seed(&mut msg, seed, 4, &mut scratch);
        let seeding = payload(&msg);
        let mut ranges = Vec::new();
        update_ranges(&seeding, |r| ranges.push(r)).unwrap();
        let whole = ClockRange {
            client: seed,
            start: 0,
            end: seed_len(4),
        };
        assert_eq!(ranges, vec![whole]);
        let form = |doc: &Doc| {
            let comps = doc.get_or_insert_map(COMPONENTS_MAP);
            let txn = doc.transact();
            serde_json::json!({ "components": comps.to_json(&txn) })
        };
        // The editing client and a replica both start from the seed.
        let doc = Doc::with_client_id(1_000_002);
        let replica = Doc::new();
        for d in [&doc, &replica] {
            let u = Update::decode_v1(&seeding).unwrap();
            d.transact_mut().apply_update(u).unwrap();
        }
        let seeded = form(&doc);
        assert_eq!(seeded["components"]["field-2"]["label"], "Field 2");
        assert_eq!(
            seeded["components"]["field-2"]["parent"],
            serde_json::Value::Null
        );
        coform_model::validate(&seeded).unwrap();
        // Applying the seed twice changes nothing.
        let sv = replica.transact().state_vector();
        let again = Update::decode_v1(&seeding).unwrap();
        replica.transact_mut().apply_update(again).unwrap();
        assert_eq!(replica.transact().state_vector(), sv);

        let comps = doc.get_or_insert_map(COMPONENTS_MAP);
        for seq in 0..50u64 {
            let value = edit_value(seq, 16);
            let want = {
                let mut txn = doc.transact_mut();
                let Some(yrs::Out::YMap(c)) = comps.get(&txn, "field-2") else {
                    panic!("field-2 is not a map");
                };
                c.insert(&mut txn, "label", value.as_str());
                txn.encode_update_v1()
            };
            msg.clear();
            let target = EditTarget::Label { seed, index: 2 };
            encode_edit(&mut msg, 1_000_002, target, seq, 16, &mut scratch);
            let got = payload(&msg);
            assert_eq!(got, want, "seq {seq}");
            let u = Update::decode_v1(&got).unwrap();
            replica.transact_mut().apply_update(u).unwrap();
            let now = form(&replica);
            assert_eq!(now["components"]["field-2"]["label"], value.as_str());
            coform_model::validate(&now).unwrap();
        }
        assert_eq!(form(&replica), form(&doc));
    }

    #[test]
    fn value_carries_the_sequence_number() {
        assert_eq!(edit_value(0, 4), "xxx0");
        assert_eq!(edit_value(1234, 6), "xx1234");
        assert_eq!(edit_value(99, 1), "9");
    }

    #[test]
    fn ranges_of_single_and_merged_updates() {
        let u = edit_payload(1_000_001, b"field-1", 5, 8);
        let mut got = Vec::new();
        update_ranges(&u, |r| got.push(r)).unwrap();
        assert_eq!(
            got,
            vec![ClockRange {
                client: 1_000_001,
                start: 5,
                end: 6
            }]
        );
        let parts: Vec<Vec<u8>> = (0..4)
            .map(|s| edit_payload(1_000_001, b"field-1", s, 8))
            .chain((0..3).map(|s| edit_payload(1_000_002, b"field-2", s, 8)))
            .collect();
        let merged = yrs::merge_updates_v1(parts.iter().map(|p| p.as_slice())).unwrap();
        let mut got = Vec::new();
        update_ranges(&merged, |r| got.push(r)).unwrap();
        got.sort_by_key(|r| r.client);
        assert_eq!(
            got,
            vec![
                ClockRange {
                    client: 1_000_001,
                    start: 0,
                    end: 4
                },
                ClockRange {
                    client: 1_000_002,
                    start: 0,
                    end: 3
                }
            ]
        );
    }

    #[test]
    fn hocuspocus_framing_prefixes_the_document() {
        let f = Framing::for_doc(true, "doc-1");
        let msgs = opening_messages(&f);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"\x05doc-1\x02\x00\x00");
        assert_eq!(f.strip(&msgs[1]).unwrap(), &[0, 0, 1, 0]);
        let plain = opening_messages(&Framing::Plain);
        assert_eq!(plain, vec![vec![0, 0, 1, 0]]);
    }
}
