//! Poseidon Merkle trees of the rollup, kept natively: nodes are circomlib's
//! `Poseidon(left, right)`, an empty leaf is 0, and an empty subtree of height `h` has the
//! root [`empty_root`]`(h)`. The account, nullifier, local exit and global exit trees all
//! have this shape.

use std::{collections::HashMap, sync::OnceLock};

use halo2_base::halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr};

use super::GLOBAL_EXIT_DEPTH;
use crate::circomlib::poseidon;

/// The tallest tree any part of the rollup uses (the nullifier tree).
const MAX_HEIGHT: usize = 64;

/// The root of an empty subtree of height `height` (0 for a leaf).
///
/// # Panics
/// Above height 64 (no tree of the rollup is that tall).
pub fn empty_root(height: usize) -> Fr {
    static EMPTY: OnceLock<Vec<Fr>> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut roots = vec![Fr::ZERO];
        for h in 0..MAX_HEIGHT {
            roots.push(poseidon::hash(&[roots[h], roots[h]]));
        }
        roots
    })[height]
}

/// The root reached from `leaf` at `index` along `path` (siblings, leaf level first).
pub fn root_from_path(leaf: Fr, index: u64, path: &[Fr]) -> Fr {
    path.iter().enumerate().fold(leaf, |cur, (level, sibling)| {
        if (index >> level) & 1 == 1 {
            poseidon::hash(&[*sibling, cur])
        } else {
            poseidon::hash(&[cur, *sibling])
        }
    })
}

/// A sparse Merkle tree that stores only its non-empty nodes.
#[derive(Debug, Clone)]
pub struct SparseMerkleTree {
    depth: usize,
    /// Non-empty nodes, keyed by (level, index); level 0 holds leaves.
    nodes: HashMap<(usize, u64), Fr>,
}

impl SparseMerkleTree {
    /// An empty tree of `depth` levels (1 to 64).
    ///
    /// # Panics
    /// On a depth outside 1 to 64 (depths are constants of the code).
    pub fn new(depth: usize) -> Self {
        assert!(
            (1..=MAX_HEIGHT).contains(&depth),
            "tree depth {depth} out of range"
        );
        Self {
            depth,
            nodes: HashMap::new(),
        }
    }

    /// The depth.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether `index` is a leaf of this tree.
    pub fn fits(&self, index: u64) -> bool {
        self.depth >= 64 || index >> self.depth == 0
    }

    /// The current root.
    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    /// A leaf (0 when empty).
    pub fn leaf(&self, index: u64) -> Fr {
        self.node(0, index)
    }

    fn node(&self, level: usize, index: u64) -> Fr {
        self.nodes
            .get(&(level, index))
            .copied()
            .unwrap_or_else(|| empty_root(level))
    }

    /// Sets a leaf and updates its path to the root.
    ///
    /// # Panics
    /// When `index` does not fit the tree (callers check [`SparseMerkleTree::fits`]).
    pub fn set(&mut self, index: u64, leaf: Fr) {
        assert!(
            self.fits(index),
            "leaf {index} outside a depth-{} tree",
            self.depth
        );
        let mut cur = leaf;
        self.nodes.insert((0, index), cur);
        let mut i = index;
        for level in 0..self.depth {
            let sibling = self.node(level, i ^ 1);
            cur = if i & 1 == 1 {
                poseidon::hash(&[sibling, cur])
            } else {
                poseidon::hash(&[cur, sibling])
            };
            i >>= 1;
            self.nodes.insert((level + 1, i), cur);
        }
    }

    /// The Merkle path of a leaf: siblings from the leaf level up.
    pub fn path(&self, index: u64) -> Vec<Fr> {
        (0..self.depth)
            .map(|level| self.node(level, (index >> level) ^ 1))
            .collect()
    }
}

/// The global exit tree: leaf `c` is chain `c`'s local exit root (0 for a chain that has not
/// reported one), depth [`GLOBAL_EXIT_DEPTH`]. Its root is what L1 settles and what claims are
/// proven against.
#[derive(Debug, Clone)]
pub struct GlobalExitTree {
    tree: SparseMerkleTree,
}

impl Default for GlobalExitTree {
    fn default() -> Self {
        Self::new()
    }
}

impl GlobalExitTree {
    /// A tree with no chain's exit root.
    pub fn new() -> Self {
        Self {
            tree: SparseMerkleTree::new(GLOBAL_EXIT_DEPTH),
        }
    }

    /// The tree of the given `(chain_id, local_exit_root)` pairs (later pairs win).
    ///
    /// # Panics
    /// On a chain id of `2^GLOBAL_EXIT_DEPTH` or more.
    pub fn from_roots(roots: impl IntoIterator<Item = (u64, Fr)>) -> Self {
        let mut tree = Self::new();
        for (chain, root) in roots {
            tree.set(chain, root);
        }
        tree
    }

    /// Records chain `chain_id`'s local exit root.
    ///
    /// # Panics
    /// On a chain id of `2^GLOBAL_EXIT_DEPTH` or more.
    pub fn set(&mut self, chain_id: u64, local_exit_root: Fr) {
        self.tree.set(chain_id, local_exit_root);
    }

    /// The global exit root.
    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    /// The path of chain `chain_id`'s leaf.
    pub fn path(&self, chain_id: u64) -> Vec<Fr> {
        self.tree.path(chain_id)
    }

    /// The global exit root over all `2^GLOBAL_EXIT_DEPTH` leaves given densely (leaf `c` is
    /// chain `c`'s local exit root): what an aggregation circuit computes with
    /// [`super::global_exit_root_gadget`].
    ///
    /// # Panics
    /// Unless `leaves` has exactly `2^GLOBAL_EXIT_DEPTH` elements.
    pub fn root_of_leaves(leaves: &[Fr]) -> Fr {
        assert_eq!(
            leaves.len(),
            1 << GLOBAL_EXIT_DEPTH,
            "one leaf per chain id"
        );
        let mut level = leaves.to_vec();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| poseidon::hash(&[pair[0], pair[1]]))
                .collect();
        }
        level[0]
    }
}
