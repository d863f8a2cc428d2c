//! The browser client (DESIGN §4 `GET /`): a page, its script and its
//! style, plain files beside this one, embedded in the binary so that the
//! server needs no build step and no files at run time. `routes.rs` asks
//! `asset` for a path and answers with what it finds.

/// One embedded file and how it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("index.html"),
};

const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("app.js"),
};

const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("style.css"),
};

/// The client's file at `path` (the request target; a query string is
/// ignored, so `/?x=1` is the page too), or `None`.
pub fn asset(path: &str) -> Option<Asset> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match path {
        "/" | "/index.html" => Some(INDEX),
        "/client/app.js" => Some(SCRIPT),
        "/client/style.css" => Some(STYLE),
        _ => None,
    }
}

/// What the page may load and where its script may connect: its own
/// origin only (and WebSocket to it), no inline script or style, no
/// framing. The client writes every server string as text; this is the
/// second fence.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_found_with_their_types() {
        assert_eq!(asset("/").map(|a| a.content_type), Some(INDEX.content_type));
        assert_eq!(asset("/?from=link"), Some(INDEX));
        assert_eq!(asset("/client/app.js"), Some(SCRIPT));
        assert_eq!(asset("/client/style.css"), Some(STYLE));
        assert_eq!(asset("/client/"), None);
        assert_eq!(asset("/client/../Cargo.toml"), None);
    }

    #[test]
    fn the_page_names_the_files_that_are_served() {
        let page = std::str::from_utf8(INDEX.body).expect("utf-8 page");
        for path in ["/client/app.js", "/client/style.css"] {
            assert!(page.contains(path), "index.html does not load {path}");
            assert!(asset(path).is_some());
        }
    }
}
