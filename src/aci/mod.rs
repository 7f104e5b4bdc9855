//! Reading ACI archives: format detection, layout checks, safe extraction.
