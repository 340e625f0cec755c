//! Checks an item's node arena against the rules in `wit/types.wit`.
//!
//! Items come from the host, and a plugin host may be careless, so every rule is checked before
//! an encoder walks the tree. Once [`check`] passes, a recursive walk from the item's attributes
//! is guaranteed to stay in bounds, visit each node once and recurse at most [`MAX_DEPTH`] deep.

use std::fmt;

use crate::wit::{AttrNode, Item};

/// DynamoDB nests `M` and `L` values at most 32 levels deep; the values inside the deepest
/// container are one level further.
pub const MAX_DEPTH: usize = 33;

/// Why an item's arena is not a valid tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidItem(pub String);

impl fmt::Display for InvalidItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidItem {}

fn invalid(message: String) -> InvalidItem {
    InvalidItem(message)
}

/// Checks every arena rule: indices in bounds, children after their parent, every node
/// referred to exactly once, nesting at most [`MAX_DEPTH`] levels.
pub fn check(item: &Item) -> Result<(), InvalidItem> {
    // depth[i] == 0 means "not referred to yet".
    let mut depth = vec![0u8; item.nodes.len()];
    for (_, root) in &item.attrs {
        refer(&mut depth, *root, 0, None)?;
    }
    // Children always follow their parent, so one pass in index order sees every parent's
    // depth before its children need it.
    for (index, node) in item.nodes.iter().enumerate() {
        let own_depth = depth[index];
        if own_depth == 0 {
            return Err(invalid(format!("node {index} is not referred to by any attribute or container")));
        }
        if matches!(node, AttrNode::L(_) | AttrNode::M(_)) && usize::from(own_depth) >= MAX_DEPTH {
            return Err(invalid(format!("containers nest deeper than {} levels at node {index}", MAX_DEPTH - 1)));
        }
        match node {
            AttrNode::L(children) => {
                for child in children {
                    refer(&mut depth, *child, own_depth, Some(index))?;
                }
            }
            AttrNode::M(entries) => {
                for (_, child) in entries {
                    refer(&mut depth, *child, own_depth, Some(index))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Records that `parent` (at `parent_depth`, or an attribute when `None`) refers to `child`.
fn refer(depth: &mut [u8], child: u32, parent_depth: u8, parent: Option<usize>) -> Result<(), InvalidItem> {
    let child = child as usize;
    let len = depth.len();
    if child >= len {
        return Err(invalid(format!("node index {child} is out of bounds ({len} nodes)")));
    }
    if let Some(parent) = parent
        && child <= parent
    {
        return Err(invalid(format!("node {parent} refers to node {child}, which does not come after it")));
    }
    if depth[child] != 0 {
        return Err(invalid(format!("node {child} is referred to more than once")));
    }
    let child_depth = parent_depth + 1;
    if usize::from(child_depth) > MAX_DEPTH {
        return Err(invalid(format!("nesting is deeper than {MAX_DEPTH} levels at node {child}")));
    }
    depth[child] = child_depth;
    Ok(())
}

/// Returns map entries sorted by name, refusing duplicate names.
///
/// Sorting makes the output independent of the order the host's SDK happened to use, so the
/// same table yields the same bytes (and MD5s) on every run.
pub fn sorted_entries(entries: &[(String, u32)]) -> Result<Vec<&(String, u32)>, InvalidItem> {
    let mut sorted: Vec<&(String, u32)> = entries.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(invalid(format!("attribute name {:?} appears twice in one map", pair[0].0)));
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(attrs: Vec<(&str, u32)>, nodes: Vec<AttrNode>) -> Item {
        Item { attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), nodes }
    }

    #[test]
    fn accepts_a_tree() {
        let it = item(
            vec![("a", 0), ("b", 3)],
            vec![AttrNode::L(vec![1, 2]), AttrNode::Null, AttrNode::M(vec![]), AttrNode::Bool(true)],
        );
        assert_eq!(check(&it), Ok(()));
    }

    #[test]
    fn refuses_out_of_bounds_backward_shared_and_orphan_nodes() {
        let cases = [
            (item(vec![("a", 1)], vec![AttrNode::Null]), "out of bounds"),
            (item(vec![("a", 1)], vec![AttrNode::Null, AttrNode::L(vec![0])]), "not referred"),
            (item(vec![("a", 0), ("b", 0)], vec![AttrNode::Null]), "more than once"),
            (item(vec![("a", 0)], vec![AttrNode::L(vec![0])]), "does not come after"),
            (item(vec![("a", 0)], vec![AttrNode::Null, AttrNode::Null]), "not referred"),
        ];
        for (it, expected) in cases {
            let err = check(&it).unwrap_err();
            assert!(err.0.contains(expected), "{err} should mention {expected}");
        }
    }

    #[test]
    fn limits_containers_to_32_levels() {
        // `containers` nested lists with a NULL inside the innermost one.
        let chain = |containers: u32| {
            let mut nodes: Vec<AttrNode> = (1..=containers).map(|i| AttrNode::L(vec![i])).collect();
            nodes.push(AttrNode::Null);
            item(vec![("a", 0)], nodes)
        };
        assert_eq!(check(&chain(32)), Ok(()));
        assert!(check(&chain(33)).unwrap_err().0.contains("deeper than"));
        // An empty container at the 33rd level is as deep as a full one.
        let mut nodes: Vec<AttrNode> = (1..=32).map(|i| AttrNode::L(vec![i])).collect();
        nodes.push(AttrNode::M(vec![]));
        assert!(check(&item(vec![("a", 0)], nodes)).unwrap_err().0.contains("containers nest deeper than 32"));
    }

    #[test]
    fn sorted_entries_refuses_duplicates() {
        let entries = vec![("b".to_string(), 0), ("a".to_string(), 1)];
        let names: Vec<&str> = sorted_entries(&entries).unwrap().iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let dup = vec![("a".to_string(), 0), ("a".to_string(), 1)];
        assert!(sorted_entries(&dup).is_err());
    }
}
