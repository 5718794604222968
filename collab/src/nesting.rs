//! How deeply a document may nest, enforced where bytes come in.
//!
//! Several walks over a document recurse once per level of nesting: in
//! `yrs` (decoding a nested value, deleting a shared type and its
//! children, garbage-collecting them, rendering XML) and in Coform
//! (rendering JSON, validation, diffs). A client that could nest 20,000
//! levels would overflow a thread's stack and abort the whole process —
//! and, since updates are durable, again after every restart. So nesting
//! is bounded before any of those walks can see it:
//!
//! - [`scan_update_v1`] reads an update's structure without recursion,
//!   **before** `yrs` decodes it: values (`Any`, embedded JSON) nested
//!   deeper than [`MAX_NESTING`] are refused, and so is a chain of shared
//!   types created by the update itself that is deeper than that. It
//!   returns the update's *anchors*: the new shared types whose parent is
//!   already in the document.
//! - [`check_anchors`], after the room applied the update, measures how
//!   deep each anchor landed (walking up its parents, at most
//!   [`MAX_NESTING`] steps); too deep, and the room refuses the update and
//!   rebuilds its document from the store, which never received it.
//! - [`repair`] cuts what is too deep out of a document stored before
//!   these checks existed, deepest level first, so that not even the
//!   deletion recurses deeply.
//!
//! The limit is the form model's own ([`coform_model::MAX_DEPTH`]) plus
//! the level of the root map: every valid template passes with room to
//! spare, and nothing deeper than a valid template ever gets in.

use std::collections::HashMap;

use yrs::types::text::{Diff, YChange};
use yrs::types::xml::{XmlFragment, XmlOut};
use yrs::{
    Assoc, BranchID, ClientID, IndexScope, Map, MapRef, Out, ReadTxn, StickyIndex, Text, TextRef,
    Transact, ID,
};

/// Deepest nesting accepted below a root map: shared types and values
/// together count one level each (a root's direct child is at level 1).
pub const MAX_NESTING: usize = coform_model::MAX_DEPTH + 1;

/// Why an update was refused before it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NestingError {
    /// The bytes are not a Yjs v1 update.
    #[error("malformed update: {0}")]
    Malformed(&'static str),
    /// A value (array, object or embedded JSON) nests too deeply.
    #[error("a value nests deeper than {MAX_NESTING} levels")]
    ValueTooDeep,
    /// Shared types nest too deeply.
    #[error("shared types nest deeper than {MAX_NESTING} levels")]
    TypesTooDeep,
    /// Items of the update name each other as their origin in a loop.
    #[error("malformed update: items refer to each other in a loop")]
    Cycle,
}

/// A shared type created by an update whose parent is not created by the
/// same update: how deep it lands is known only once it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The item that holds the new type.
    pub id: ID,
    /// Levels of new shared types at and below it in the update (1: it
    /// has no new nested types of its own).
    pub levels: usize,
}

/// What [`scan_update_v1`] learned about an update.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpdateShape {
    /// New shared types attached to parents outside the update.
    pub anchors: Vec<Anchor>,
}

// ---------------------------------------------------------------- reading

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, NestingError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(NestingError::Malformed("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn var_u64(&mut self) -> Result<u64, NestingError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                return Err(NestingError::Malformed("varint too long"));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn var_u32(&mut self) -> Result<u32, NestingError> {
        u32::try_from(self.var_u64()?).map_err(|_| NestingError::Malformed("number out of range"))
    }

    /// A signed varint (lib0): continuation bit, then sign and 6 bits.
    fn skip_var_int(&mut self) -> Result<(), NestingError> {
        for _ in 0..10 {
            if self.u8()? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(NestingError::Malformed("varint too long"))
    }

    fn skip(&mut self, n: usize) -> Result<(), NestingError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(NestingError::Malformed("truncated"))?;
        self.pos = end;
        Ok(())
    }

    fn bytes(&mut self) -> Result<&'a [u8], NestingError> {
        let len = usize::try_from(self.var_u64()?)
            .map_err(|_| NestingError::Malformed("length out of range"))?;
        let start = self.pos;
        self.skip(len)?;
        Ok(&self.buf[start..start + len])
    }

    fn string(&mut self) -> Result<&'a str, NestingError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| NestingError::Malformed("invalid UTF-8"))
    }

    /// A client id: at most 53 bits (see [`crate::protocol::MAX_CLIENT_ID`]).
    fn client(&mut self) -> Result<u64, NestingError> {
        let client = self.var_u64()?;
        if client > crate::protocol::MAX_CLIENT_ID {
            return Err(NestingError::Malformed("client id out of range"));
        }
        Ok(client)
    }

    fn id(&mut self) -> Result<ID, NestingError> {
        let client = self.client()?;
        let clock = self.var_u32()?;
        Ok(ID::new(ClientID::new(client), clock))
    }

    /// Skips one lib0 `Any` value, nested at most `room` levels, without
    /// recursion.
    fn skip_any(&mut self, room: usize) -> Result<(), NestingError> {
        // Each open array or map: values still to read, and whether each
        // value is preceded by a key.
        let mut open: Vec<(u64, bool)> = Vec::new();
        loop {
            match self.u8()? {
                127 | 126 | 121 | 120 => {}
                125 => self.skip_var_int()?,
                124 => self.skip(4)?,
                123 | 122 => self.skip(8)?,
                119 => {
                    self.string()?;
                }
                116 => {
                    self.bytes()?;
                }
                tag @ (118 | 117) => {
                    let len = self.var_u64()?;
                    if open.len() + 1 > room {
                        return Err(NestingError::ValueTooDeep);
                    }
                    if len > 0 {
                        let keyed = tag == 118;
                        open.push((len, keyed));
                        if keyed {
                            self.string()?;
                        }
                        continue;
                    }
                }
                _ => return Err(NestingError::Malformed("unknown value type")),
            }
            // One value is complete: step to the next one of its container.
            loop {
                let Some((left, keyed)) = open.last_mut() else {
                    return Ok(());
                };
                *left -= 1;
                if *left == 0 {
                    open.pop();
                } else {
                    if *keyed {
                        self.string()?;
                    }
                    break;
                }
            }
        }
    }
}

/// How deeply JSON text nests (arrays and objects), without parsing it.
pub fn json_text_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

pub use coform_model::json_depth;

fn check_json_text(text: &str) -> Result<(), NestingError> {
    if json_text_depth(text) > MAX_NESTING {
        Err(NestingError::ValueTooDeep)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------- the scan

/// Where an item's parent is, as far as the update tells.
#[derive(Clone, Copy)]
enum ParentRef {
    /// A root type, by name.
    Root,
    /// The shared type held by this item.
    Item(ID),
    /// The same parent as the item holding this id (an origin).
    SameAs(ID),
}

struct Struct {
    client: u64,
    clock: u32,
    len: u32,
    parent: ParentRef,
    is_type: bool,
}

/// A parent resolved within the update.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Root,
    /// A shared type created by this update (index into the structs).
    New(usize),
    /// Something already in the document (or missing).
    Outside,
}

/// Content length and kind of one item; reads its content.
fn read_content(r: &mut Reader, info: u8) -> Result<(u32, bool), NestingError> {
    let n = |v: usize| u32::try_from(v).map_err(|_| NestingError::Malformed("item too long"));
    Ok(match info & 0b1111 {
        1 => (r.var_u32()?, false),
        2 => {
            // Kept as yrs reads it: the count is followed by count + 1 strings.
            let count = r.var_u32()?;
            for _ in 0..=count {
                check_json_text(r.string()?)?;
            }
            (count.saturating_add(1), false)
        }
        3 => {
            r.bytes()?;
            (1, false)
        }
        4 => (n(r.string()?.encode_utf16().count())?, false),
        5 => {
            check_json_text(r.string()?)?;
            (1, false)
        }
        6 => {
            r.string()?;
            check_json_text(r.string()?)?;
            (1, false)
        }
        7 => {
            let type_ref = r.u8()?;
            match type_ref {
                // An XML hook (5) carries no name for yrs, which is what
                // reads the update next: the scan must end where it does.
                0 | 1 | 2 | 4 | 5 | 6 | 9 | 15 => {}
                3 => {
                    r.string()?;
                }
                _ => return Err(NestingError::Malformed("unknown shared type")),
            }
            (1, true)
        }
        8 => {
            let count = r.var_u32()?;
            for _ in 0..count {
                r.skip_any(MAX_NESTING)?;
            }
            (count, false)
        }
        9 => {
            r.string()?;
            r.skip_any(MAX_NESTING)?;
            (1, false)
        }
        _ => return Err(NestingError::Malformed("unknown content type")),
    })
}

/// Reads a v1 update's structure — as `yrs` will, but without recursion —
/// and refuses nesting deeper than [`MAX_NESTING`] that it can see on its
/// own, client ids that do not fit in 53 bits (structs and the delete
/// set), and deleted ranges that overflow a clock.
pub fn scan_update_v1(update: &[u8]) -> Result<UpdateShape, NestingError> {
    let mut r = Reader {
        buf: update,
        pos: 0,
    };
    let mut structs: Vec<Struct> = Vec::new();
    let clients = r.var_u64()?;
    for _ in 0..clients {
        let count = r.var_u64()?;
        let client = r.client()?;
        let mut clock = r.var_u32()?;
        for _ in 0..count {
            let info = r.u8()?;
            let len = match info {
                0 | 10 => r.var_u32()?,
                _ => {
                    let origin = (info & 0x80 != 0).then(|| r.id()).transpose()?;
                    let right = (info & 0x40 != 0).then(|| r.id()).transpose()?;
                    let parent = match origin.or(right) {
                        Some(o) => ParentRef::SameAs(o),
                        None => {
                            let parent = if r.var_u64()? == 1 {
                                r.string()?;
                                ParentRef::Root
                            } else {
                                ParentRef::Item(r.id()?)
                            };
                            if info & 0x20 != 0 {
                                r.string()?;
                            }
                            parent
                        }
                    };
                    let (len, is_type) = read_content(&mut r, info)?;
                    if len > 0 {
                        structs.push(Struct {
                            client,
                            clock,
                            len,
                            parent,
                            is_type,
                        });
                    }
                    len
                }
            };
            clock = clock
                .checked_add(len)
                .ok_or(NestingError::Malformed("clock overflow"))?;
        }
    }
    // The delete set: client ids, and ranges that end within `u32`.
    let delete_set = if r.pos < r.buf.len() { r.var_u64()? } else { 0 };
    for _ in 0..delete_set {
        r.client()?;
        for _ in 0..r.var_u64()? {
            r.var_u32()?
                .checked_add(r.var_u32()?)
                .ok_or(NestingError::Malformed("deleted range out of range"))?;
        }
    }
    if !structs.iter().any(|s| s.is_type) {
        return Ok(UpdateShape::default());
    }
    type_chains(&structs)
}

/// Depth of every new shared type within the update; the anchors.
fn type_chains(structs: &[Struct]) -> Result<UpdateShape, NestingError> {
    // Items by client, in clock order, to find the one holding an id.
    let mut by_client: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, s) in structs.iter().enumerate() {
        by_client.entry(s.client).or_default().push(i);
    }
    for list in by_client.values_mut() {
        list.sort_by_key(|&i| structs[i].clock);
    }
    let find = |id: &ID| -> Option<usize> {
        let list = by_client.get(&id.client.get())?;
        let at = list.partition_point(|&i| structs[i].clock <= id.clock);
        let i = *list.get(at.checked_sub(1)?)?;
        let s = &structs[i];
        (id.clock - s.clock < s.len).then_some(i)
    };

    // Parent of each item, following origins through the update.
    let mut parent: Vec<Option<Resolved>> = vec![None; structs.len()];
    let resolve =
        |start: usize, parent: &mut Vec<Option<Resolved>>| -> Result<Resolved, NestingError> {
            let mut path = Vec::new();
            let mut cur = start;
            let found = loop {
                if let Some(known) = parent[cur] {
                    break known;
                }
                if path.len() > structs.len() {
                    return Err(NestingError::Cycle);
                }
                path.push(cur);
                match structs[cur].parent {
                    ParentRef::Root => break Resolved::Root,
                    ParentRef::Item(p) => match find(&p) {
                        Some(j) if structs[j].is_type => break Resolved::New(j),
                        _ => break Resolved::Outside,
                    },
                    ParentRef::SameAs(o) => match find(&o) {
                        Some(j) => cur = j,
                        None => break Resolved::Outside,
                    },
                }
            };
            for i in path {
                parent[i] = Some(found);
            }
            Ok(found)
        };

    // Level of each new type (1 = its parent is a root or outside), and
    // the anchor it hangs from (None: a root).
    let mut level: Vec<usize> = vec![0; structs.len()];
    let mut anchor: Vec<Option<usize>> = vec![None; structs.len()];
    let mut deepest_below: HashMap<usize, usize> = HashMap::new();
    for t in (0..structs.len()).filter(|&i| structs[i].is_type) {
        let mut stack = vec![t];
        while let Some(&x) = stack.last() {
            if level[x] != 0 {
                stack.pop();
                continue;
            }
            match resolve(x, &mut parent)? {
                Resolved::Root => {
                    level[x] = 1;
                }
                Resolved::Outside => {
                    level[x] = 1;
                    anchor[x] = Some(x);
                }
                Resolved::New(p) if level[p] != 0 => {
                    level[x] = level[p] + 1;
                    anchor[x] = anchor[p];
                }
                Resolved::New(p) => {
                    if stack.contains(&p) {
                        return Err(NestingError::Cycle);
                    }
                    stack.push(p);
                    if stack.len() > MAX_NESTING {
                        return Err(NestingError::TypesTooDeep);
                    }
                    continue;
                }
            }
            if level[x] > MAX_NESTING {
                return Err(NestingError::TypesTooDeep);
            }
            if let Some(a) = anchor[x] {
                let below = deepest_below.entry(a).or_default();
                *below = (*below).max(level[x]);
            }
            stack.pop();
        }
    }
    let mut anchors: Vec<Anchor> = deepest_below
        .into_iter()
        .map(|(a, levels)| Anchor {
            id: ID::new(ClientID::new(structs[a].client), structs[a].clock),
            levels,
        })
        .collect();
    anchors.sort_by_key(|a| (a.id.client, a.id.clock));
    Ok(UpdateShape { anchors })
}

// ---------------------------------------------------------------- after applying

/// Why an applied update must be taken back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("shared types nest deeper than {MAX_NESTING} levels")]
    TooDeep,
    #[error("the update builds on content the server does not have")]
    Missing,
}

/// The parent type of the item holding `id`, if that item is in the
/// document.
fn parent_of<T: ReadTxn>(txn: &T, id: ID) -> Option<yrs::branch::BranchPtr> {
    StickyIndex::new(IndexScope::Relative(id), Assoc::After)
        .get_offset(txn)
        .map(|o| o.branch)
}

/// Level of the shared type held by item `id` (a root's child is at 1),
/// counted up to `limit + 1`; `None` if no live shared type holds it.
pub fn type_level<T: ReadTxn>(txn: &T, id: ID, limit: usize) -> Option<usize> {
    let mut branch = BranchID::get_nested(txn, &id)?;
    if branch.is_deleted() {
        return None;
    }
    let mut level = 0;
    loop {
        match branch.id() {
            BranchID::Root(_) => return Some(level),
            BranchID::Nested(item) => {
                level += 1;
                if level > limit {
                    return Some(level);
                }
                branch = parent_of(txn, item)?;
            }
        }
    }
}

/// After an update with these anchors was applied: is every new shared
/// type integrated, and within [`MAX_NESTING`]?
pub fn check_anchors<T: ReadTxn>(txn: &T, anchors: &[Anchor]) -> Result<(), AnchorError> {
    if anchors.is_empty() {
        return Ok(());
    }
    let sv = txn.state_vector();
    for a in anchors {
        if sv.get(&a.id.client) <= a.id.clock {
            // Waiting for a missing parent: its depth can't be checked now,
            // and it would be integrated later without a check.
            return Err(AnchorError::Missing);
        }
        // A deleted parent takes the new types with it: no depth to check.
        if let Some(level) = type_level(txn, a.id, MAX_NESTING) {
            if level + a.levels - 1 > MAX_NESTING {
                return Err(AnchorError::TooDeep);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- repair

/// Where a child sits in its parent.
#[derive(Clone)]
enum Slot {
    Key(String),
    Index(u32),
    /// The item holding the child, in a sequence: its index is asked of
    /// `yrs` when it is removed, counted as `yrs` counts.
    Item(ID),
}

/// A container and how to reach its children.
#[derive(Clone)]
enum Node {
    Map(MapRef),
    /// A sequence: an array, a text, or a root that the server never gave
    /// a type. Walked item by item through the text view, where a run of
    /// characters is one chunk, whatever type the sequence has.
    Seq(TextRef),
    Xml(yrs::XmlFragmentRef),
    XmlElement(yrs::XmlElementRef),
}

/// The sequence view of a shared type's items.
fn seq_of(branch: &yrs::branch::Branch) -> Node {
    Node::Seq(TextRef::from(yrs::branch::BranchPtr::from(branch)))
}

impl Node {
    fn of(out: &Out) -> Option<Node> {
        match out {
            Out::YMap(m) => Some(Node::Map(m.clone())),
            Out::YArray(a) => Some(seq_of(a.as_ref())),
            Out::YText(t) => Some(Node::Seq(t.clone())),
            Out::YXmlText(t) => Some(seq_of(t.as_ref())),
            Out::YXmlFragment(f) => Some(Node::Xml(f.clone())),
            Out::YXmlElement(e) => Some(Node::XmlElement(e.clone())),
            _ => None,
        }
    }

    fn of_xml(x: XmlOut) -> Option<Node> {
        match x {
            XmlOut::Element(e) => Some(Node::XmlElement(e)),
            XmlOut::Fragment(f) => Some(Node::Xml(f)),
            XmlOut::Text(t) => Some(seq_of(t.as_ref())),
        }
    }

    /// The item that holds this container (`None` for a root).
    fn item(&self) -> Option<ID> {
        let branch: &yrs::branch::Branch = match self {
            Node::Map(m) => m.as_ref(),
            Node::Seq(t) => t.as_ref(),
            Node::Xml(f) => f.as_ref(),
            Node::XmlElement(e) => e.as_ref(),
        };
        match branch.id() {
            BranchID::Nested(id) => Some(id),
            BranchID::Root(_) => None,
        }
    }

    /// Child containers, each with its slot. `steps` counts the entries,
    /// chunks and children looked at: the walk's work, linear in the
    /// number of items (a run of text is one step, not one per character).
    fn children<T: ReadTxn>(&self, txn: &T, steps: &mut usize) -> Vec<(Slot, Node)> {
        match self {
            Node::Map(m) => m
                .iter(txn)
                .inspect(|_| *steps += 1)
                .filter_map(|(k, v)| Node::of(&v).map(|n| (Slot::Key(k.to_owned()), n)))
                .collect(),
            Node::Xml(f) => xml_children(txn, f, steps),
            Node::XmlElement(e) => xml_children(txn, e, steps),
            Node::Seq(t) => {
                let chunks: Vec<Diff<YChange>> = t.diff(txn, YChange::identity);
                *steps += chunks.len();
                chunks
                    .iter()
                    .filter_map(|chunk| {
                        let node = Node::of(&chunk.insert)?;
                        Some((Slot::Item(node.item()?), node))
                    })
                    .collect()
            }
        }
    }

    fn remove(&self, txn: &mut yrs::TransactionMut, slot: &Slot) {
        match (self, slot) {
            (Node::Map(m), Slot::Key(k)) => {
                m.remove(txn, k);
            }
            (Node::Xml(f), Slot::Index(i)) => f.remove_range(txn, *i, 1),
            (Node::XmlElement(e), Slot::Index(i)) => e.remove_range(txn, *i, 1),
            (Node::Seq(t), Slot::Item(id)) => {
                // Only a live child of this very sequence is removed.
                let alive = BranchID::get_nested(txn, id).is_some_and(|b| !b.is_deleted());
                let at = StickyIndex::new(IndexScope::Relative(*id), Assoc::After)
                    .get_offset(txn)
                    .filter(|o| std::ptr::eq::<yrs::branch::Branch>(o.branch.as_ref(), t.as_ref()));
                if let (true, Some(at)) = (alive, at) {
                    if at.index < t.len(txn) {
                        t.remove_range(txn, at.index, 1);
                    }
                }
            }
            _ => {}
        }
    }
}

fn xml_children<T: ReadTxn, X: XmlFragment>(
    txn: &T,
    x: &X,
    steps: &mut usize,
) -> Vec<(Slot, Node)> {
    x.children(txn)
        .enumerate()
        .inspect(|_| *steps += 1)
        .filter_map(|(i, c)| Node::of_xml(c).map(|n| (Slot::Index(i as u32), n)))
        .collect()
}

/// Too-deep containers by level below the limit: (parent, slot) to
/// delete each by.
type Doomed = Vec<Vec<(Node, Slot)>>;

/// Walks every root without recursion and lists what nests deeper than
/// [`MAX_NESTING`]; also returns the work done (see [`Node::children`]).
fn find_too_deep(doc: &yrs::Doc) -> (Doomed, usize) {
    let mut doomed: Doomed = Vec::new();
    let mut steps = 0usize;
    let txn = doc.transact();
    let mut stack: Vec<(Node, usize)> = Vec::new();
    for (_, root) in txn.root_refs() {
        match root {
            // A root only clients have typed: its keys as a map, its
            // items as a sequence (text, array or both).
            Out::UndefinedRef(b) => {
                stack.push((Node::Map(MapRef::from(b)), 0));
                stack.push((Node::Seq(TextRef::from(b)), 0));
            }
            other => stack.extend(Node::of(&other).map(|n| (n, 0))),
        }
    }
    while let Some((node, level)) = stack.pop() {
        for (slot, child) in node.children(&txn, &mut steps) {
            let child_level = level + 1;
            if child_level > MAX_NESTING {
                let i = child_level - MAX_NESTING - 1;
                if doomed.len() <= i {
                    doomed.resize_with(i + 1, Vec::new);
                }
                doomed[i].push((node.clone(), slot));
            }
            stack.push((child, child_level));
        }
    }
    (doomed, steps)
}

/// Cuts every shared type nested deeper than [`MAX_NESTING`] out of `doc`
/// (a document stored before the door checks existed) and returns the v1
/// updates that do it, deepest level first, one per level; empty if
/// nothing is too deep. Each level is its own transaction, so neither the
/// deletion nor the garbage collection after it walks more than one level
/// of nesting — here or in a client that applies the updates one by one.
/// A deep subtree and its deletion must never be applied in one
/// transaction (that walk recurses through the whole subtree): the caller
/// stores the repaired state as a snapshot, never these updates as log
/// entries. Without recursion, and linear in the number of items: a run
/// of text is one step however long (roots the server never typed
/// included); blocking for a large document.
pub fn repair(doc: &yrs::Doc) -> Vec<Vec<u8>> {
    let (mut doomed, _) = find_too_deep(doc);
    let mut updates = Vec::with_capacity(doomed.len());
    for level in doomed.iter_mut().rev() {
        // Within one parent, higher indexes first: removing one does not
        // move the others (items are found by id, whatever their index).
        level.sort_by(|a, b| match (&a.1, &b.1) {
            (Slot::Index(x), Slot::Index(y)) => y.cmp(x),
            _ => std::cmp::Ordering::Equal,
        });
        let mut txn = doc.transact_mut();
        for (parent, slot) in level.iter() {
            parent.remove(&mut txn, slot);
        }
        updates.push(txn.encode_update_v1());
    }
    updates
}

#[cfg(test)]
mod tests;
