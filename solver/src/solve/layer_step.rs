//! A step that adds one layer to its base (a file op or a RUN), answered in this order: by
//! its definition key when it reads other stages (no input's content needed), by its content
//! key from the local index or an imported cache, else run — and recorded under both keys,
//! for this store and for `--cache-to`.

use std::time::Instant;

use kiln_llb::{CacheKey, Op, OpId};

use super::ops::file::keyed_base;
use super::ops::{Inputs, LayerStep, input};
use super::{Event, EventKind, Inner, LayerRecord, OpResult, SolveError, StepError};
use crate::cache::remote::CacheRecord;
use crate::cache::{CacheEntry, key};

impl Inner {
    /// Solves a step that adds one layer to its base: answered by its definition key when
    /// it reads other stages, else by its content key, else run.
    pub(super) fn layer_step(
        &self,
        id: OpId,
        op: &Op,
        step: &dyn LayerStep,
        inputs: &Inputs,
    ) -> Result<OpResult, SolveError> {
        let base_result = input(inputs, step.base(), "base")?;
        let def_key = self.definition_key(op, base_result, &step.sources(), inputs)?;
        if let Some(hit) = self.definition_hit(id, def_key.as_ref(), base_result) {
            return Ok(hit);
        }
        let key = step.key(self, id, op, inputs)?;
        self.layer_op(id, key, def_key, base_result, || step.run(self, id, inputs))
    }

    /// The definition key of an op that reads other stages: its parameters and its inputs'
    /// keys, without the content it reads from them. Looked up before the content key, so a
    /// hit needs no input's rootfs (an imported cache then never downloads a stage's layers
    /// just to hash them). `None` when an input is a local directory, whose key says nothing
    /// about its content, or when no input is a stage.
    pub(super) fn definition_key(
        &self,
        op: &Op,
        base: &OpResult,
        sources: &[OpId],
        inputs: &Inputs,
    ) -> Result<Option<CacheKey>, SolveError> {
        let mut any_stage = false;
        for s in sources {
            match inputs.get(s).map(|r| r.as_ref()) {
                Some(OpResult::Dir { .. }) => return Ok(None),
                Some(r) if !r.layers().is_empty() => any_stage = true,
                Some(_) => {}
                None => return Err(SolveError::Definition("missing source".into())),
            }
        }
        if !any_stage || self.opts.no_cache {
            return Ok(None);
        }
        let source_keys: Vec<&CacheKey> = sources
            .iter()
            .filter_map(|s| inputs.get(s).map(|r| r.key()))
            .collect();
        Ok(Some(key::definition(
            op,
            &keyed_base(op, base),
            &source_keys,
        )))
    }

    /// The cached result of a definition key, as a layer on `base`.
    pub(super) fn definition_hit(
        &self,
        id: OpId,
        def_key: Option<&CacheKey>,
        base: &OpResult,
    ) -> Option<OpResult> {
        // A definition key names its inputs by key, not content; a stage re-run for
        // `--no-cache-filter` may have new content under its old key, so only content
        // keys may answer while one is given.
        if self.ignores_cache(id) || !self.opts.no_cache_stages.is_empty() {
            return None;
        }
        let def_key = def_key?;
        let (layer, result_key) = self.lookup(def_key)?;
        let result_key = CacheKey(result_key?);
        self.progress
            .send(Event::new(id.0, self.name(id), EventKind::Cached));
        self.record(def_key, Some(&result_key), &layer);
        self.record(&result_key, None, &layer);
        let mut layers = base.layers().to_vec();
        layers.push(layer);
        Some(OpResult::Layers {
            key: result_key,
            layers,
            manifest_digest: None,
        })
    }

    /// An op that adds one layer to its base: answered from the cache index when `key` was
    /// solved before (and its blob is still present), else run and recorded — under `key`
    /// and, when given, under its definition key too.
    pub(super) fn layer_op(
        &self,
        id: OpId,
        key: CacheKey,
        def_key: Option<CacheKey>,
        base: &OpResult,
        run: impl FnOnce() -> Result<LayerRecord, StepError>,
    ) -> Result<OpResult, SolveError> {
        let started = Instant::now();
        let name = self.name(id);
        let mut layers = base.layers().to_vec();
        let hit = if self.ignores_cache(id) {
            None
        } else {
            self.lookup(&key).map(|(rec, _)| rec)
        };
        let rec = match hit {
            Some(rec) => {
                self.progress
                    .send(Event::new(id.0, name, EventKind::Cached));
                rec
            }
            None => {
                self.progress
                    .send(Event::new(id.0, name.clone(), EventKind::Started));
                self.explain.ran(id);
                let rec = run().map_err(|e| self.step_failed(id, e))?;
                self.put_entry(id, &key, &rec, None)?;
                self.progress
                    .send(Event::new(id.0, name, EventKind::Done(started.elapsed())));
                rec
            }
        };
        if let Some(dk) = &def_key {
            self.put_entry(id, dk, &rec, Some(&key))?;
            self.record(dk, Some(&key), &rec);
        }
        self.record(&key, None, &rec);
        layers.push(rec);
        Ok(OpResult::Layers {
            key,
            layers,
            manifest_digest: None,
        })
    }

    pub(super) fn put_entry(
        &self,
        id: OpId,
        key: &CacheKey,
        layer: &LayerRecord,
        result_key: Option<&CacheKey>,
    ) -> Result<(), SolveError> {
        let entry = CacheEntry {
            layer: layer.clone(),
            result_key: result_key.map(|k| k.0.clone()),
        };
        crate::cache::index::put(&self.store, &key.0, &entry)
            .map_err(|e| self.fail(id, e.to_string()))
    }

    /// Notes a record for `--cache-to`.
    pub(super) fn record(
        &self,
        key: &CacheKey,
        result_key: Option<&CacheKey>,
        layer: &LayerRecord,
    ) {
        if let Ok(mut records) = self.records.lock() {
            records.push(CacheRecord {
                key: key.0.clone(),
                result_key: result_key.map(|k| k.0.clone()),
                layer: layer.clone(),
            });
        }
    }

    /// The layer (and result key) cached under `key`: from the local index while its blob
    /// is still in the store, else from an imported cache (its blob is fetched when needed).
    pub(super) fn lookup(&self, key: &CacheKey) -> Option<(LayerRecord, Option<String>)> {
        if let Some(entry) = crate::cache::index::get(&self.store, &key.0) {
            return Some((entry.layer, entry.result_key));
        }
        self.opts
            .remote_cache
            .lookup(&key.0)
            .map(|r| (r.layer, r.result_key))
    }
}
