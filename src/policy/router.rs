//! Route templates compiled once into a segment trie.
//!
//! A template is `/literal/{param}/…`. At each segment a literal child is preferred to a parameter,
//! with backtracking, so `/a/b` beats `/a/{x}` whatever the file order. Matching works on segments
//! that `pipeline::normalize` has already proven unambiguous.

use std::collections::HashMap;

use http::Method;

/// One parsed template segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

/// Parse a template; errors are human texts for `otpgate check`.
pub fn parse_template(template: &str) -> Result<Vec<Segment>, String> {
    let rest = template.strip_prefix('/').ok_or("a path template must start with '/'")?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    let mut out = Vec::new();
    for seg in rest.split('/') {
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let ok = inner.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && inner.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(format!("parameter `{{{inner}}}` must be lower_snake_case"));
            }
            if names.contains(&inner) {
                return Err(format!("parameter `{{{inner}}}` appears twice"));
            }
            names.push(inner);
            out.push(Segment::Param(inner.to_string()));
        } else if seg.is_empty() {
            return Err("empty segment (`//` or trailing `/`)".into());
        } else if seg == "." || seg == ".." {
            return Err("dot segments are not allowed".into());
        } else if !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            return Err(format!("literal segment `{seg}` may hold only letters, digits and -._~"));
        } else {
            out.push(Segment::Literal(seg.to_string()));
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<String, Node>,
    param: Option<Box<Node>>,
    /// Routes ending here: (route index, methods).
    routes: Vec<(usize, Vec<Method>)>,
}

/// The outcome of matching a path and method.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'p> {
    /// The route index and the parameter values, in template order.
    Found(usize, Vec<&'p str>),
    /// The path exists, not with this method; the methods that are allowed.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

#[derive(Debug, Default)]
pub struct Router {
    root: Node,
}

impl Router {
    /// Add a route; returns the index of an earlier route with the same shape and a shared method.
    pub fn insert(&mut self, segments: &[Segment], methods: &[Method], index: usize) -> Result<(), usize> {
        let mut node = &mut self.root;
        for seg in segments {
            node = match seg {
                Segment::Literal(l) => node.literal.entry(l.clone()).or_default(),
                Segment::Param(_) => node.param.get_or_insert_with(Default::default),
            };
        }
        for (other, other_methods) in &node.routes {
            if methods.iter().any(|m| other_methods.contains(m)) {
                return Err(*other);
            }
        }
        node.routes.push((index, methods.to_vec()));
        Ok(())
    }

    pub fn find<'p>(&self, segments: &[&'p str], method: &Method) -> Match<'p> {
        let mut params = Vec::new();
        let Some(node) = walk(&self.root, segments, &mut params) else {
            return Match::NotFound;
        };
        for (index, methods) in &node.routes {
            if methods.contains(method) {
                return Match::Found(*index, params);
            }
        }
        let mut allowed: Vec<Method> = node.routes.iter().flat_map(|(_, m)| m.clone()).collect();
        allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        allowed.dedup();
        Match::MethodNotAllowed(allowed)
    }
}

fn walk<'n, 'p>(node: &'n Node, segments: &[&'p str], params: &mut Vec<&'p str>) -> Option<&'n Node> {
    let Some((first, rest)) = segments.split_first() else {
        return (!node.routes.is_empty()).then_some(node);
    };
    if let Some(child) = node.literal.get(*first)
        && let Some(found) = walk(child, rest, params)
    {
        return Some(found);
    }
    if let Some(child) = &node.param {
        params.push(first);
        if let Some(found) = walk(child, rest, params) {
            return Some(found);
        }
        params.pop();
    }
    None
}

#[cfg(test)]
mod tests;
