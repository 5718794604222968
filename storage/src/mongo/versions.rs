//! [`VersionStore`] for the MongoDB backend.
//!
//! Like the rest of the backend it uses single-document operations only;
//! each rule of [`crate::versions`] is kept as follows.
//!
//! # Documents
//!
//! - `template_version_counters` `{_id: template, last}`: the highest
//!   version number handed out for a template, taken with `$inc`. Created
//!   by a plain insert (a duplicate key means another caller was first)
//!   starting at the template's highest stored number, then only
//!   incremented: SecantusDB may answer a concurrent upserting
//!   `find_one_and_update` with no document although it applied it.
//! - `template_versions` `{template, number, name, note, author,
//!   createdAt, size, parts, state | set}`: one version, unique on
//!   `(template, number)`. A state larger than [`INLINE_MAX`] lives in
//!   `template_version_chunks` `{template, set, n, data}` parts of
//!   [`crate::mongo::CHUNK_SIZE`], where `set` is an ObjectId unique to
//!   the attempt that wrote them.
//! - `template_stats` `{_id: template, views, edits, lastEditAt?,
//!   lastEditor?}`: the usage figures.
//! - `template_editors` `{template, user}`: one per distinct editor,
//!   unique on `(template, user)` (counted, never capped).
//!
//! # Creating a version
//!
//! 1. Check the template listing exists (`NotFound("template")`).
//! 2. Write the state's chunks, if it is large.
//! 3. Take the next number from the counter (one atomic `$inc`); a
//!    missing counter is only created while the listing exists.
//! 4. Insert the version document: the commit point. Until then nothing
//!    is listed, so a half-written version is never seen; stray chunks of
//!    a crashed attempt go with the template's history.
//! 5. Check the listing again: if the template was deleted meanwhile, its
//!    history is removed again (whoever deletes a template deletes the
//!    listing first and the history after, so either that removal or this
//!    one sees the new version).
//!
//! Numbers are consecutive because every number is taken once from the
//! counter and used at once; only a failure between steps 3 and 4 (the
//! server lost mid-call) leaves one unused.
//!
//! # Figures
//!
//! Recording first updates the figures document without upsert. When it
//! is missing, the listing is checked, the document inserted (a duplicate
//! key is fine) and updated; the listing is then checked again and the
//! figures removed if it went meanwhile. The latest edit moves only
//! forward (`$max`), and the last editor is set by an update filtered on
//! `lastEditAt <= at`, so a batch made earlier never overwrites it.
//! Editors are inserted unordered (duplicates ignored), and the listing
//! is checked after them too: a deletion of the history that ran in
//! between would otherwise leave them behind.
//!
//! A figures document that exists is proof enough to update it without
//! checking the listing: the deletion of a template removes its figures
//! after the listing, and a recorder that recreated them meanwhile removes
//! them again.

use std::collections::BTreeSet;

use bytes::Bytes;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::ReturnDocument;
use mongodb::Collection;

use super::{EDITORS, STATS, TEMPLATES, VERSIONS, VERSION_CHUNKS, VERSION_COUNTERS};
use crate::accounts::Millis;
use crate::error::{Result, StoreError};
use crate::mongo::{
    binary, collect, corrupt, db_err, get_i64, get_str, is_duplicate, read_chunks, take_binary,
    write_chunks, MongoStore, CAS_ATTEMPTS, INLINE_MAX,
};
use crate::rules::{not_found, to_i64};
use crate::versions::{NewVersion, TemplateStats, Version, VersionInfo};

// ---------------------------------------------------------------- helpers

/// The fields of a version document other than its state.
const INFO_FIELDS: [&str; 9] = [
    "template",
    "number",
    "name",
    "note",
    "author",
    "createdAt",
    "size",
    "parts",
    "set",
];

fn info_projection() -> Document {
    INFO_FIELDS
        .iter()
        .map(|f| (f.to_string(), Bson::Int32(1)))
        .collect()
}

fn get_u64(d: &Document, key: &str, what: &str) -> Result<u64> {
    u64::try_from(get_i64(d, key, what)?).map_err(|_| corrupt(what, key))
}

fn decode_info(d: &Document) -> Result<VersionInfo> {
    const W: &str = "version";
    Ok(VersionInfo {
        template_id: get_str(d, "template", W)?,
        number: get_u64(d, "number", W)?,
        name: get_str(d, "name", W)?,
        note: get_str(d, "note", W)?,
        author_id: get_str(d, "author", W)?,
        created_at: get_i64(d, "createdAt", W)?,
        size: get_u64(d, "size", W)?,
    })
}

fn decode_stats(d: &Document, editors: u64) -> Result<TemplateStats> {
    const W: &str = "template stats";
    let last_edit_at = match d.get("lastEditAt") {
        None | Some(Bson::Null) => None,
        Some(_) => Some(get_i64(d, "lastEditAt", W)?),
    };
    let last_editor = match d.get("lastEditor") {
        None | Some(Bson::Null) => None,
        Some(_) => Some(get_str(d, "lastEditor", W)?),
    };
    Ok(TemplateStats {
        views: get_u64(d, "views", W)?,
        edits: get_u64(d, "edits", W)?,
        editors,
        last_edit_at,
        last_editor,
    })
}

/// True when every failure of an unordered `insert_many` is a duplicate
/// key (the documents that were new are in).
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match &*e.kind {
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|errs| errs.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        _ => is_duplicate(e),
    }
}

/// Inserts `d`; a duplicate key (someone else inserted it) is success.
async fn insert_if_missing(coll: &Collection<Document>, d: Document) -> Result<()> {
    match coll.insert_one(d).await {
        Ok(_) => Ok(()),
        Err(e) if is_duplicate(&e) => Ok(()),
        Err(e) => Err(db_err(e)),
    }
}

impl MongoStore {
    async fn template_exists(&self, id: &str) -> Result<bool> {
        self.exists(TEMPLATES, id).await
    }

    /// After writing figures or a version of `template`: if its listing is
    /// gone (deleted concurrently), removes its history again and returns
    /// false.
    async fn still_listed(&self, template: &str) -> Result<bool> {
        if self.template_exists(template).await? {
            return Ok(true);
        }
        self.delete_template_history(template).await?;
        Ok(false)
    }

    /// Highest version number stored for `template`, 0 for none.
    async fn highest_number(&self, template: &str) -> Result<i64> {
        self.coll(VERSIONS)
            .find_one(doc! { "template": template })
            .sort(doc! { "number": -1 })
            .projection(doc! { "number": 1 })
            .await
            .map_err(db_err)?
            .map_or(Ok(0), |d| get_i64(&d, "number", "version"))
    }

    /// Takes the next version number of `template`: one atomic `$inc` of
    /// its counter, created first if it is missing (see the module docs).
    /// `None` when the template is not listed (any more).
    async fn next_number(&self, template: &str) -> Result<Option<i64>> {
        let counters = self.coll(VERSION_COUNTERS);
        for _ in 0..CAS_ATTEMPTS {
            let counter = counters
                .find_one_and_update(doc! { "_id": template }, doc! { "$inc": { "last": 1i64 } })
                .return_document(ReturnDocument::After)
                .await
                .map_err(db_err)?;
            if let Some(counter) = counter {
                return get_i64(&counter, "last", "version counter").map(Some);
            }
            // Missing: never created, or removed with the history of a
            // template deleted meanwhile (then it must not come back).
            if !self.template_exists(template).await? {
                return Ok(None);
            }
            // Start after what is stored, so a counter removed while
            // versions remained never hands out a taken number.
            let last = self.highest_number(template).await?;
            insert_if_missing(&counters, doc! { "_id": template, "last": last }).await?;
        }
        Err(StoreError::Unavailable(format!(
            "could not number a version of `{template}`"
        )))
    }

    /// Inserts version document `d` under the next number of `template`
    /// and returns the number; `None` when the template is not listed.
    async fn insert_numbered(&self, template: &str, d: &mut Document) -> Result<Option<i64>> {
        let versions = self.coll(VERSIONS);
        for _ in 0..CAS_ATTEMPTS {
            let Some(n) = self.next_number(template).await? else {
                return Ok(None);
            };
            d.insert("number", n);
            match versions.insert_one(&*d).await {
                Ok(_) => return Ok(Some(n)),
                // Only when the counter fell behind (removed while versions
                // remained): take the next one.
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "could not number a version of `{template}`"
        )))
    }

    /// Adds `views` and `edits` to the figures (and moves the latest edit
    /// to `at` if it is later); true if the figures document exists.
    async fn bump_figures(&self, template: &str, update: &Document) -> Result<bool> {
        let r = self
            .coll(STATS)
            .update_one(doc! { "_id": template }, update.clone())
            .await
            .map_err(db_err)?;
        Ok(r.matched_count == 1)
    }

    /// [`Self::bump_figures`], creating the figures document if the
    /// template is listed. False when it is not (nothing was written).
    async fn record_figures(&self, template: &str, update: &Document) -> Result<bool> {
        if self.bump_figures(template, update).await? {
            return Ok(true);
        }
        if !self.template_exists(template).await? {
            return Ok(false);
        }
        let fresh = doc! { "_id": template, "views": 0i64, "edits": 0i64 };
        insert_if_missing(&self.coll(STATS), fresh).await?;
        // Not matched: removed again by a concurrent deletion of the
        // template; the check below sees it gone.
        self.bump_figures(template, update).await?;
        self.still_listed(template).await
    }
}

impl MongoStore {
    pub(crate) async fn create_version(&self, version: NewVersion) -> Result<VersionInfo> {
        self.check_open()?;
        let v = version;
        let created_at = v.created_at;
        let size = to_i64(v.state.len() as u64)?;
        if !self.template_exists(&v.template_id).await? {
            return Err(not_found("template"));
        }
        let mut d = doc! {
            "template": &v.template_id,
            "name": &v.name,
            "note": &v.note,
            "author": &v.author_id,
            "createdAt": created_at,
            "size": size,
        };
        if v.state.len() > INLINE_MAX {
            let set = ObjectId::new();
            let key = doc! { "template": &v.template_id, "set": set };
            let parts = write_chunks(&self.coll(VERSION_CHUNKS), &key, &v.state).await?;
            d.insert("parts", parts);
            d.insert("set", set);
        } else {
            d.insert("parts", 0);
            d.insert("state", binary(v.state.to_vec()));
        }
        let number = self.insert_numbered(&v.template_id, &mut d).await?;
        // Check the listing again (see the module docs); on `None` this
        // removes the chunks written above.
        let (true, Some(number)) = (self.still_listed(&v.template_id).await?, number) else {
            return Err(not_found("template"));
        };
        Ok(VersionInfo {
            template_id: v.template_id,
            number: number as u64,
            name: v.name,
            note: v.note,
            author_id: v.author_id,
            created_at,
            size: size as u64,
        })
    }

    pub(crate) async fn list_versions(&self, template_id: &str) -> Result<Vec<VersionInfo>> {
        let cursor = self
            .coll(VERSIONS)
            .find(doc! { "template": template_id })
            .projection(info_projection())
            .sort(doc! { "number": -1 })
            .await
            .map_err(db_err)?;
        collect(cursor).await?.iter().map(decode_info).collect()
    }

    pub(crate) async fn version(&self, template_id: &str, number: u64) -> Result<Option<Version>> {
        let Ok(number) = i64::try_from(number) else {
            return Ok(None);
        };
        let filter = doc! { "template": template_id, "number": number };
        let versions = self.coll(VERSIONS);
        let Some(mut d) = versions.find_one(filter.clone()).await.map_err(db_err)? else {
            return Ok(None);
        };
        const W: &str = "version";
        let info = decode_info(&d)?;
        let parts = i32::try_from(get_i64(&d, "parts", W)?).map_err(|_| corrupt(W, "parts"))?;
        let state = if parts == 0 {
            take_binary(&mut d, "state", W)?
        } else {
            let set = d.get_object_id("set").map_err(|_| corrupt(W, "set"))?;
            let len = usize::try_from(info.size).map_err(|_| corrupt(W, "size"))?;
            let key = doc! { "template": template_id, "set": set };
            match read_chunks(&self.coll(VERSION_CHUNKS), key, parts, len).await? {
                Some(state) => state,
                None => {
                    // Its history was deleted meanwhile, or it is damaged.
                    if versions.find_one(filter).await.map_err(db_err)?.is_none() {
                        return Ok(None);
                    }
                    return Err(StoreError::Corrupt(format!(
                        "version {number} of `{template_id}` has missing chunks"
                    )));
                }
            }
        };
        if state.len() as u64 != info.size {
            return Err(StoreError::Corrupt(format!(
                "version {number} of `{template_id}` has {} bytes, expected {}",
                state.len(),
                info.size
            )));
        }
        Ok(Some(Version {
            info,
            state: Bytes::from(state),
        }))
    }

    pub(crate) async fn record_views(&self, template_id: &str, count: u64) -> Result<()> {
        self.check_open()?;
        let update = doc! { "$inc": { "views": to_i64(count)? } };
        self.record_figures(template_id, &update).await?;
        Ok(())
    }

    pub(crate) async fn record_edits(
        &self,
        template_id: &str,
        edits: u64,
        editors: &[String],
        at: Millis,
    ) -> Result<()> {
        self.check_open()?;
        let update = doc! {
            "$inc": { "edits": to_i64(edits)? },
            "$max": { "lastEditAt": at },
        };
        if !self.record_figures(template_id, &update).await? {
            return Ok(());
        }
        let Some(last) = editors.last() else {
            return Ok(());
        };
        // After the `$max` above, `lastEditAt <= at` means no later edit
        // is recorded: this batch holds the latest one.
        self.coll(STATS)
            .update_one(
                doc! { "_id": template_id, "lastEditAt": { "$lte": at } },
                doc! { "$set": { "lastEditor": last } },
            )
            .await
            .map_err(db_err)?;
        let distinct: BTreeSet<&str> = editors.iter().map(String::as_str).collect();
        let docs = distinct
            .into_iter()
            .map(|user| doc! { "template": template_id, "user": user });
        match self.coll(EDITORS).insert_many(docs).ordered(false).await {
            Ok(_) => {}
            Err(e) if only_duplicates(&e) => {}
            Err(e) => return Err(db_err(e)),
        }
        // Editors written after a concurrent deletion of the history.
        self.still_listed(template_id).await?;
        Ok(())
    }

    pub(crate) async fn template_stats(&self, template_id: &str) -> Result<TemplateStats> {
        let Some(d) = self
            .coll(STATS)
            .find_one(doc! { "_id": template_id })
            .await
            .map_err(db_err)?
        else {
            return Ok(TemplateStats::default());
        };
        let editors = self
            .coll(EDITORS)
            .count_documents(doc! { "template": template_id })
            .await
            .map_err(db_err)?;
        decode_stats(&d, editors)
    }

    pub(crate) async fn delete_template_history(&self, template_id: &str) -> Result<()> {
        self.check_open()?;
        // The version documents first: a crash midway leaves unlisted
        // chunks, never a listed version without its state.
        let by_template = doc! { "template": template_id };
        for coll in [VERSIONS, VERSION_CHUNKS, EDITORS] {
            self.coll(coll)
                .delete_many(by_template.clone())
                .await
                .map_err(db_err)?;
        }
        for coll in [VERSION_COUNTERS, STATS] {
            self.coll(coll)
                .delete_one(doc! { "_id": template_id })
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::{templates_of_u1, NOW};
    use crate::testing::{drop_database, MongoServer};

    async fn with_template(id: &str) -> (MongoStore, String) {
        let url = MongoServer::shared().fresh_database_url();
        let s = MongoStore::connect(&url).await.unwrap();
        templates_of_u1(&s, &[id]).await;
        (s, url)
    }

    fn new_version(state: Bytes) -> NewVersion {
        NewVersion {
            template_id: "t1".into(),
            name: "v".into(),
            note: String::new(),
            author_id: "u1".into(),
            created_at: NOW,
            state,
        }
    }

    async fn count(s: &MongoStore, coll: &str) -> u64 {
        s.coll(coll).count_documents(doc! {}).await.unwrap()
    }

    /// A crash after the chunks of a large state were written but before
    /// its version document: nothing is listed, the next version still
    /// gets number 1, and the stray chunks go with the history.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn half_written_version_is_never_listed() {
        let (s, url) = with_template("t1").await;
        let stray = vec![7u8; INLINE_MAX + 10];
        let key = doc! { "template": "t1", "set": ObjectId::new() };
        write_chunks(&s.coll(VERSION_CHUNKS), &key, &stray)
            .await
            .unwrap();
        assert!(s.list_versions("t1").await.unwrap().is_empty());
        let big = Bytes::from(vec![9u8; INLINE_MAX + 1]);
        let info = s.create_version(new_version(big.clone())).await.unwrap();
        assert_eq!(info.number, 1);
        assert_eq!(count(&s, VERSION_CHUNKS).await, 4);
        let got = s.version("t1", 1).await.unwrap().unwrap();
        assert!(got.state == big, "state mixed with stray chunks");
        s.delete_template_history("t1").await.unwrap();
        for coll in [VERSIONS, VERSION_CHUNKS, VERSION_COUNTERS] {
            assert_eq!(count(&s, coll).await, 0, "{coll}");
        }
        drop_database(&url).await.unwrap();
    }

    /// A counter lost while versions remain resumes after the highest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_counter_resumes_after_the_highest_number() {
        let (s, url) = with_template("t1").await;
        for _ in 0..3 {
            s.create_version(new_version(Bytes::from_static(b"x")))
                .await
                .unwrap();
        }
        s.coll(VERSION_COUNTERS).delete_many(doc! {}).await.unwrap();
        let info = s
            .create_version(new_version(Bytes::from_static(b"y")))
            .await
            .unwrap();
        assert_eq!(info.number, 4);
        drop_database(&url).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn figures_and_counters_go_with_the_history() {
        let (s, url) = with_template("t1").await;
        s.create_version(new_version(Bytes::from_static(b"x")))
            .await
            .unwrap();
        s.record_views("t1", 2).await.unwrap();
        s.record_edits("t1", 3, &["a".into(), "b".into()], NOW)
            .await
            .unwrap();
        // Known editors again, one new: counted once each.
        s.record_edits("t1", 1, &["b".into(), "c".into(), "a".into()], NOW - 1)
            .await
            .unwrap();
        assert_eq!(count(&s, EDITORS).await, 3);
        let st = s.template_stats("t1").await.unwrap();
        assert_eq!((st.views, st.edits, st.editors), (2, 4, 3));
        assert_eq!(st.last_edit_at, Some(NOW));
        assert_eq!(st.last_editor.as_deref(), Some("b"));
        s.delete_template_history("t1").await.unwrap();
        for coll in [VERSIONS, VERSION_COUNTERS, STATS, EDITORS] {
            assert_eq!(count(&s, coll).await, 0, "{coll}");
        }
        drop_database(&url).await.unwrap();
    }

    /// Versions and figures recorded while the template is deleted (and
    /// then its history): nothing of it is left afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_racing_a_template_deletion_leave_nothing() {
        for round in 0..3 {
            let (s, url) = with_template("t1").await;
            let mut tasks = Vec::new();
            for i in 0..12u8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    match i % 3 {
                        0 => {
                            let r = s.create_version(new_version(Bytes::from(vec![i]))).await;
                            assert!(matches!(r, Ok(_) | Err(StoreError::NotFound(_))), "{r:?}");
                        }
                        1 => s.record_views("t1", 1).await.unwrap(),
                        _ => s
                            .record_edits("t1", 1, &[format!("u{i}")], NOW)
                            .await
                            .unwrap(),
                    }
                }));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
            s.delete_template("t1").await.unwrap();
            s.delete_template_history("t1").await.unwrap();
            for t in tasks {
                t.await.unwrap();
            }
            for coll in [VERSIONS, VERSION_CHUNKS, VERSION_COUNTERS, STATS, EDITORS] {
                assert_eq!(count(&s, coll).await, 0, "round {round}: {coll}");
            }
            drop_database(&url).await.unwrap();
        }
    }
}
