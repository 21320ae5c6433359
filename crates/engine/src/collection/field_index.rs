//! Declaring and dropping payload field indexes.

use super::*;

impl Collection {
    /// Declares a payload field index on `key` (a key path as in filters) and builds it for
    /// every sealed segment (rewriting each segment's `fields` file), then publishes the
    /// manifest. Returns `false` if the same index was already declared; a different kind on
    /// the same key is an error (drop it first).
    pub fn create_field_index(&self, key: &str, kind: FieldKind) -> Result<bool> {
        self.check_usable()?;
        let path = KeyPath::parse(key)
            .map_err(|e| self.invalid(format!("field index key `{key}`: {e}")))?;
        let key = path.as_str().to_string();
        let mut published = self.maintenance.lock();
        match self.payload_indexes.read().get(&key) {
            Some(k) if *k == kind => return Ok(false),
            Some(k) => {
                return Err(self.invalid(format!(
                    "field `{key}` already has a {k} index; drop it before creating a {kind} index"
                )));
            }
            None => {}
        }
        self.payload_indexes.write().insert(key.clone(), kind);
        let one = BTreeMap::from([(key, kind)]);
        let result = (|| -> Result<()> {
            for seg in self.segment_list().iter() {
                let crate::segment::Body::Sealed(files) = &seg.body else {
                    continue;
                };
                let mut fields = (*seg.fields()).clone();
                for index in planner::build_fields(&one, files).iter() {
                    fields.insert(index.clone());
                }
                segfiles::replace_fields_file(&files.dir, files.rows as u64, &fields.encode())?;
                seg.set_fields(fields);
            }
            let watermark = published.watermark;
            self.publish(&mut published, watermark, &[])
        })();
        match result {
            Ok(()) => Ok(true),
            Err(e) => self.fail(e),
        }
    }

    /// Drops a declared payload field index. Returns whether it existed. Filters on the key
    /// still work, checked per point.
    pub fn drop_field_index(&self, key: &str) -> Result<bool> {
        self.check_usable()?;
        let key = KeyPath::parse(key)
            .map_err(|e| self.invalid(format!("field index key `{key}`: {e}")))?
            .as_str()
            .to_string();
        let mut published = self.maintenance.lock();
        if self.payload_indexes.write().remove(&key).is_none() {
            return Ok(false);
        }
        let result = (|| -> Result<()> {
            // The manifest first: a crash after it leaves `fields` files with an extra index,
            // which open ignores.
            let watermark = published.watermark;
            self.publish(&mut published, watermark, &[])?;
            for seg in self.segment_list().iter() {
                let crate::segment::Body::Sealed(files) = &seg.body else {
                    continue;
                };
                let mut fields = (*seg.fields()).clone();
                if fields.remove(&key).is_some() {
                    segfiles::replace_fields_file(&files.dir, files.rows as u64, &fields.encode())?;
                    seg.set_fields(fields);
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(true),
            Err(e) => self.fail(e),
        }
    }
}
