//! Changing a collection's settings (graph parameters and config), persisted in the manifest.

use super::*;

/// The schema and config: what the manifest holds besides segments. Replaced whole, so a
/// reader never sees half of a change.
pub(super) struct Settings {
    pub(super) schema: Arc<Schema>,
    pub(super) config: CollectionConfig,
}

impl Collection {
    /// Applies `patch` and publishes a manifest holding the new settings before it returns.
    /// Graph parameters apply to segments built from then on (seals and merges; existing
    /// graphs are not rebuilt); the seal threshold from the next write, the merge settings from
    /// the next merge, `filter_scan_fraction` from the next search. An invalid value is an
    /// error and changes nothing.
    pub fn update_settings(&self, patch: &SettingsPatch) -> Result<()> {
        self.check_usable()?;
        // Under `maintenance`: a seal or merge in progress finishes with the old parameters,
        // and no other publish can write the old settings back.
        let mut published = self.maintenance.lock();
        self.check_usable()?;
        let current = self.settings();
        let (schema, config) =
            patch
                .apply(&current.schema, &current.config)
                .map_err(|e| match e {
                    Error::InvalidSchema { reason } => self.invalid(reason),
                    e => e,
                })?;
        if *current.schema == schema && current.config == config {
            return Ok(());
        }
        *self.settings.write() = Arc::new(Settings {
            schema: Arc::new(schema),
            config,
        });
        let watermark = published.watermark;
        match self.publish(&mut published, watermark, &[]) {
            Ok(()) => Ok(()),
            // Memory and disk may now disagree: refuse everything until a reopen reads the
            // manifest that made it to disk.
            Err(e) => self.fail(e),
        }
    }

    /// The current schema and config, together.
    pub(super) fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read())
    }
}
