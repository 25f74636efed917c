//! Identifier and text analysis shared by join inference and schema search: word splitting, a small
//! stemmer that makes singular and plural meet, and type families for join compatibility.

/// Splits an identifier or free text into lowercase words: at anything not a letter or digit, at camelCase
/// humps (`customerId` → `customer id`), at the end of an acronym (`HTTPServer` → `http server`) and between
/// letters and digits (`address2` → `address 2`).
pub fn words(text: &str) -> Vec<String> {
    if text.is_ascii() {
        ascii_words(text.as_bytes())
    } else {
        char_words(text)
    }
}

/// `words` for any text, char by char.
fn char_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<char> = Vec::new();
    let flush = |current: &mut Vec<char>, out: &mut Vec<String>| {
        if !current.is_empty() {
            out.push(current.iter().flat_map(|c| c.to_lowercase()).collect());
            current.clear();
        }
    };
    for ch in text.chars() {
        if !ch.is_alphanumeric() {
            flush(&mut current, &mut out);
            continue;
        }
        if let Some(&prev) = current.last() {
            let boundary = (prev.is_lowercase() && ch.is_uppercase())
                || (prev.is_alphabetic() && ch.is_numeric())
                || (prev.is_numeric() && ch.is_alphabetic());
            if boundary {
                flush(&mut current, &mut out);
            } else if prev.is_uppercase() && ch.is_lowercase() && current.len() >= 2 {
                // `HTTPServer`: the capital before the first lowercase letter starts the next word.
                let last = current.pop();
                flush(&mut current, &mut out);
                current.extend(last);
            }
        }
        current.push(ch);
    }
    flush(&mut current, &mut out);
    out
}

/// `words` for ASCII text, the common case for identifiers: the same boundaries, read on bytes and
/// lowercased as they are copied, without a buffer of chars per word (the graph build splits every column).
fn ascii_words(text: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let flush = |from: usize, to: usize, out: &mut Vec<String>| {
        if from < to {
            let mut word = String::with_capacity(to - from);
            word.extend(text[from..to].iter().map(|b| b.to_ascii_lowercase() as char));
            out.push(word);
        }
    };
    for (i, &ch) in text.iter().enumerate() {
        if !ch.is_ascii_alphanumeric() {
            if let Some(from) = start.take() {
                flush(from, i, &mut out);
            }
            continue;
        }
        let Some(from) = start else {
            start = Some(i);
            continue;
        };
        let prev = text[i - 1];
        let boundary = (prev.is_ascii_lowercase() && ch.is_ascii_uppercase())
            || (prev.is_ascii_alphabetic() && ch.is_ascii_digit())
            || (prev.is_ascii_digit() && ch.is_ascii_alphabetic());
        if boundary {
            flush(from, i, &mut out);
            start = Some(i);
        } else if prev.is_ascii_uppercase() && ch.is_ascii_lowercase() && i - from >= 2 {
            // `HTTPServer`: the capital before the first lowercase letter starts the next word.
            flush(from, i - 1, &mut out);
            start = Some(i - 1);
        }
    }
    if let Some(from) = start {
        flush(from, text.len(), &mut out);
    }
    out
}

/// Irregular plurals common in schemas; everything else goes through the suffix rules.
const IRREGULAR: &[(&str, &str)] = &[
    ("people", "person"),
    ("children", "child"),
    ("men", "man"),
    ("women", "woman"),
    ("mice", "mouse"),
    ("geese", "goose"),
    ("feet", "foot"),
    ("teeth", "tooth"),
    ("criteria", "criterion"),
    ("indices", "index"),
    ("matrices", "matrix"),
    ("vertices", "vertex"),
];

/// Reduces a lowercase word to a stem shared by its singular and plural: `categories` and `category` both
/// become `categori`, `boxes`/`box` → `box`, `addresses`/`address` → `address`, `statuses`/`status` →
/// `status`, `movies`/`movie` → `movi`. The stem is a matching key, never shown to anyone, so it only has
/// to be consistent, not a real word. Words of three letters or fewer are left alone (`bus`, `gas`, `day`).
pub fn stem(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    stem_into(word, &mut out);
    out
}

/// `stem`, appended to `out`: stem keys are built into one buffer instead of a string per word.
fn stem_into(word: &str, out: &mut String) {
    if let Some((_, singular)) = IRREGULAR.iter().find(|(plural, _)| *plural == word) {
        return stem_into(singular, out);
    }
    if word.chars().count() <= 3 || !word.chars().all(|c| c.is_alphabetic()) {
        out.push_str(word);
        return;
    }
    let start = out.len();
    out.push_str(word);
    let w = out;
    // `categories` → `categori`, `boxes` → `box`: both drop two letters.
    if ["ies", "sses", "uses", "xes", "ches", "shes", "zes"]
        .iter()
        .any(|s| w.ends_with(s))
    {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.truncate(w.len() - 1);
    }
    // A trailing `e` or `y` differs between forms (`movie`/`movies` → `movi`, `city`/`cities` → `citi`),
    // so both are folded once the word is long enough that the fold cannot empty it.
    if w.len() - start > 3 && w.ends_with('e') {
        w.truncate(w.len() - 1);
    } else if w.len() - start > 3 && w.ends_with('y') {
        w.truncate(w.len() - 1);
        w.push('i');
    }
}

/// The stems of an identifier's words, joined by `_`: the key under which table names and column
/// prefixes meet (`OrderItems`, `order_items` and `order_item` all give `order_item`).
pub fn stem_key(words: &[String]) -> String {
    let mut out = String::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        stem_into(w, &mut out);
    }
    out
}

/// Prefixes that warehouse naming puts before the entity (`dim_customer`, `fct_orders`, `tbl_users`, and dbt's
/// `stg_customers` and `int_orders`); inference also tries the name without them.
pub const TABLE_PREFIXES: &[&str] = &["dim", "fact", "fct", "tbl", "stg", "int", "raw", "src", "t"];

/// Suffixes that warehouse naming puts after the entity (`date_dim`, `sales_fact`), tried like the prefixes.
pub const TABLE_SUFFIXES: &[&str] = &["dim", "fact", "fct"];

/// True when `short` abbreviates `word` (both lowercase): at least three letters, shorter than the word,
/// its first three letters begin the word and the rest follow in order (`cust` → `customer`, `emp` →
/// `employees`, `dept` → `department`, `addr` → `address`).
pub fn abbreviates(short: &str, word: &str) -> bool {
    if short.len() < 3 || short.len() >= word.len() || !short.is_ascii() || !word.is_ascii() {
        return false;
    }
    if !word.starts_with(&short[..3]) {
        return false;
    }
    let mut rest = word[3..].chars();
    short[3..].chars().all(|c| rest.any(|w| w == c))
}

/// True when `short` spells a name of several words by their initials and then a prefix of the last word,
/// as TPC-DS does (`hdemo` → `household_demographics`, `cdemo` → `customer_demographics`): one initial for
/// each word but the last, then at least three letters that begin the last word. Single-word names never
/// match, so an ordinary word is not read as an initialism of one.
pub fn initialism(short: &str, words: &[String]) -> bool {
    let Some((last, firsts)) = words.split_last() else {
        return false;
    };
    if firsts.is_empty() || !short.is_ascii() || !last.is_ascii() {
        return false;
    }
    let mut rest = short;
    for word in firsts {
        match word.chars().next().and_then(|initial| rest.strip_prefix(initial)) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.len() >= 3 && last.starts_with(rest)
}

/// The first three bytes every initialism of `words` starts with (`h` + `de` for `household_demographics`),
/// the bucket `initialism` candidates are looked up in; `None` for single words and non-ASCII names.
pub fn initialism_key(words: &[String]) -> Option<[u8; 3]> {
    let (last, firsts) = words.split_last()?;
    if firsts.is_empty() {
        return None;
    }
    let mut key = [0u8; 3];
    let letters = firsts.iter().filter_map(|w| w.bytes().next()).chain(last.bytes());
    let mut n = 0;
    for (slot, b) in key.iter_mut().zip(letters) {
        if !b.is_ascii() {
            return None;
        }
        *slot = b;
        n += 1;
    }
    (n == 3).then_some(key)
}

/// The nouns for whoever does `verb` (`ship` → `shipper`, `carry` → `carrier`, `deliver` → `deliverer`,
/// `serve` → `server`), spelled the usual English ways; only some are real words, which does not matter
/// because they are looked up among table names.
pub fn agent_nouns(verb: &str) -> Vec<String> {
    let mut out = vec![format!("{verb}er"), format!("{verb}or")];
    if let Some(base) = verb.strip_suffix('y') {
        out.push(format!("{base}ier"));
    }
    if verb.ends_with('e') {
        out.push(format!("{verb}r"));
    }
    // A short vowel before a final consonant doubles it (`ship` → `shipper`, `run` → `runner`).
    let b = verb.as_bytes();
    let vowel = |c: u8| b"aeiou".contains(&c);
    if let [.., x, y, z] = b
        && !vowel(*x)
        && vowel(*y)
        && !vowel(*z)
        && z.is_ascii_lowercase()
        && !b"wxy".contains(z)
    {
        out.push(format!("{verb}{}er", *z as char));
    }
    out
}

/// The broad family of a column type: joins are only inferred between compatible families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeFamily {
    Integer,
    Decimal,
    Float,
    Text,
    Uuid,
    Date,
    Timestamp,
    Time,
    Boolean,
    Binary,
    Json,
    /// A type this crate does not classify (intervals, geometry, arrays, user types).
    Other,
    /// No declared type at all (SQLite allows that).
    Unknown,
}

/// Classifies an engine's type spelling (`character varying(20)`, `BIGINT UNSIGNED`, `NUMBER(10,0)`,
/// `timestamp with time zone`). Unknown spellings fall back to SQLite's affinity rules.
pub fn type_family(data_type: &str) -> TypeFamily {
    let lower = data_type.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return TypeFamily::Unknown;
    }
    let (base, args) = match lower.find('(') {
        Some(i) => (lower[..i].trim(), lower[i + 1..].trim_end_matches([')', ' '])),
        None => (lower.as_str(), ""),
    };
    if base.ends_with("[]") || base.starts_with("array") || base.starts_with("struct") {
        return TypeFamily::Other;
    }
    let first = base.split_whitespace().next().unwrap_or(base);
    match first {
        "int" | "integer" | "int2" | "int4" | "int8" | "int16" | "int32" | "int64" | "int128"
        | "smallint" | "bigint" | "tinyint" | "mediumint" | "hugeint" | "uhugeint" | "utinyint"
        | "usmallint" | "uinteger" | "ubigint" | "uint8" | "uint16" | "uint32" | "uint64" | "serial"
        | "serial2" | "serial4" | "serial8" | "smallserial" | "bigserial" | "long" | "short" => {
            TypeFamily::Integer
        }
        "decimal" | "numeric" | "number" | "dec" | "money" | "smallmoney" => {
            // NUMBER(10) and DECIMAL(12,0) hold whole numbers: Oracle-style keys look like this.
            let scale = args.split(',').nth(1).map(str::trim);
            match (first, scale) {
                (_, Some("0")) | ("number", None) if !args.is_empty() => TypeFamily::Integer,
                _ => TypeFamily::Decimal,
            }
        }
        "real" | "float" | "float4" | "float8" | "double" | "binary_float" | "binary_double" => {
            TypeFamily::Float
        }
        "char" | "character" | "varchar" | "varchar2" | "nchar" | "nvarchar" | "nvarchar2" | "text"
        | "string" | "clob" | "nclob" | "bpchar" | "name" | "citext" | "tinytext" | "mediumtext"
        | "longtext" | "enum" | "set" => TypeFamily::Text,
        "uuid" | "uniqueidentifier" => TypeFamily::Uuid,
        "date" => TypeFamily::Date,
        "timestamp" | "timestamptz" | "datetime" | "datetime2" | "smalldatetime" | "datetimeoffset"
        | "timestamp_s" | "timestamp_ms" | "timestamp_ns" => TypeFamily::Timestamp,
        "time" | "timetz" => TypeFamily::Time,
        "bool" | "boolean" | "bit" => TypeFamily::Boolean,
        "blob" | "bytea" | "binary" | "varbinary" | "longblob" | "mediumblob" | "tinyblob" | "image" => {
            TypeFamily::Binary
        }
        "json" | "jsonb" | "variant" => TypeFamily::Json,
        "interval" | "point" | "line" | "polygon" | "geometry" | "geography" | "map" | "union" | "xml"
        | "inet" | "cidr" | "macaddr" | "tsvector" => TypeFamily::Other,
        _ => affinity(base),
    }
}

/// SQLite's column affinity rules, applied to spellings no list above knows.
fn affinity(base: &str) -> TypeFamily {
    if base.contains("int") {
        TypeFamily::Integer
    } else if base.contains("char") || base.contains("clob") || base.contains("text") {
        TypeFamily::Text
    } else if base.contains("blob") {
        TypeFamily::Binary
    } else if base.contains("real") || base.contains("floa") || base.contains("doub") {
        TypeFamily::Float
    } else {
        TypeFamily::Other
    }
}

/// How plausible a join between columns of these types is: `None` when the engine could not compare them
/// meaningfully as keys, otherwise a factor in (0, 1] applied to the inferred confidence.
pub fn join_compatibility(a: &str, b: &str) -> Option<f32> {
    use TypeFamily::*;
    let (fa, fb) = (type_family(a), type_family(b));
    let unjoinable = |f: TypeFamily| matches!(f, Boolean | Json | Float);
    if unjoinable(fa) || unjoinable(fb) {
        return None;
    }
    match (fa, fb) {
        (Other, Other) => (a.trim().eq_ignore_ascii_case(b.trim())).then_some(0.9),
        (x, y) if x == y && x != Unknown => Some(1.0),
        (Integer, Decimal) | (Decimal, Integer) => Some(0.9),
        (Uuid, Text) | (Text, Uuid) => Some(0.8),
        (Date, Timestamp) | (Timestamp, Date) => Some(0.8),
        (Unknown, _) | (_, Unknown) => Some(0.85),
        _ => None,
    }
}

/// Words that carry no meaning for schema search.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "each", "for", "from", "give",
    "had", "has", "have", "how", "i", "in", "is", "it", "its", "list", "me", "my", "of", "on", "or", "our",
    "per", "show", "that", "the", "their", "them", "there", "these", "this", "those", "to", "was", "we",
    "were", "what", "when", "where", "which", "who", "whose", "why", "with", "all", "any", "find", "get",
    "please", "tell", "than", "then", "into", "about",
];

/// Search terms of a question or a document: words, minus stopwords, stemmed.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn check<I: std::fmt::Debug, O: PartialEq + std::fmt::Debug>(f: impl Fn(&I) -> O, cases: &[(I, O)]) {
        for (input, expected) in cases {
            assert_eq!(f(input), *expected, "input: {input:?}");
        }
    }

    #[test]
    fn splits_identifiers_into_words() {
        check(
            |s: &&str| words(s),
            &[
                ("customer_id", vec!["customer".to_string(), "id".into()]),
                ("customerId", vec!["customer".into(), "id".into()]),
                ("CustomerID", vec!["customer".into(), "id".into()]),
                (
                    "HTTPServerLog",
                    vec!["http".into(), "server".into(), "log".into()],
                ),
                ("address2_line", vec!["address".into(), "2".into(), "line".into()]),
                ("Order Items!", vec!["order".into(), "items".into()]),
                ("", vec![]),
            ],
        );
    }

    #[test]
    fn ascii_words_split_like_the_char_path() {
        check(
            |s: &&str| ascii_words(s.as_bytes()) == char_words(s),
            &[
                "customer_id",
                "CustomerID",
                "HTTPServerLog",
                "address2_line",
                "ss_sold_date_sk",
                "Order Items!",
                "ABC",
                "aB",
                "x9Y",
                "__",
                "",
                "getHTTP2Response",
            ]
            .map(|s| (s, true)),
        );
    }

    #[test]
    fn stems_make_singular_and_plural_meet() {
        let pairs = [
            ("categories", "category"),
            ("addresses", "address"),
            ("boxes", "box"),
            ("statuses", "status"),
            ("movies", "movie"),
            ("cities", "city"),
            ("orders", "order"),
            ("employees", "employee"),
            ("people", "person"),
            ("matches", "match"),
            ("types", "type"),
            ("days", "day"),
        ];
        check(
            |(plural, singular): &(&str, &str)| stem(plural) == stem(singular),
            &pairs.map(|p| (p, true)),
        );
        check(
            |s: &&str| stem(s),
            &[
                ("categories", "categori".to_string()),
                ("bus", "bus".into()),
                ("address", "address".into()),
            ],
        );
    }

    #[test]
    fn abbreviations_keep_the_first_three_letters_and_the_order() {
        check(
            |(short, word): &(&str, &str)| abbreviates(short, word),
            &[
                (("cust", "customers"), true),
                (("emp", "employees"), true),
                (("prod", "products"), true),
                (("dept", "departments"), true),
                (("addr", "address"), true),
                (("supp", "supplier"), true),
                (("promo", "promotion"), true),
                // Too short, not shorter, another start, letters out of order.
                (("cu", "customers"), false),
                (("customers", "customers"), false),
                (("stomer", "customers"), false),
                (("cutsom", "customers"), false),
                (("supp", "partsupp"), false),
            ],
        );
    }

    #[test]
    fn initialisms_spell_every_word_but_the_last_by_its_initial() {
        let w = |s: &str| words(s);
        check(
            |(short, name): &(&str, &str)| initialism(short, &w(name)),
            &[
                (("hdemo", "household_demographics"), true),
                (("cdemo", "customer_demographics"), true),
                (("hdemographics", "household_demographics"), true),
                (("coline", "customer_order_lines"), true),
                // A single word, a last part under three letters, a wrong initial, a missing word, letters
                // that do not begin the last word.
                (("demo", "demographics"), false),
                (("hde", "household_demographics"), false),
                (("cdemo", "household_demographics"), false),
                (("cline", "customer_order_lines"), false),
                (("hdmo", "household_demographics"), false),
                (("", "household_demographics"), false),
            ],
        );
        check(
            |name: &&str| initialism_key(&w(name)),
            &[
                ("household_demographics", Some(*b"hde")),
                ("customer_order_lines", Some(*b"col")),
                ("a_b_c_d", Some(*b"abc")),
                ("customer", None),
                ("", None),
            ],
        );
    }

    #[test]
    fn agent_nouns_cover_the_usual_spellings() {
        let has = |(verb, noun): &(&str, &str)| agent_nouns(verb).iter().any(|n| n == noun);
        check(
            has,
            &[
                (("ship", "shipper"), true),
                (("carry", "carrier"), true),
                (("deliver", "deliverer"), true),
                (("serve", "server"), true),
                (("supply", "supplier"), true),
                (("ship", "shipment"), false),
                (("show", "showwer"), false),
            ],
        );
    }

    #[test]
    fn classifies_type_families() {
        use TypeFamily::*;
        check(
            |s: &&str| type_family(s),
            &[
                ("BIGINT UNSIGNED", Integer),
                ("int4", Integer),
                ("NUMBER(10)", Integer),
                ("decimal(12,0)", Integer),
                ("numeric(10,2)", Decimal),
                ("character varying(20)", Text),
                ("VARCHAR", Text),
                ("uuid", Uuid),
                ("timestamp with time zone", Timestamp),
                ("DATE", Date),
                ("interval", Other),
                ("INTEGER[]", Other),
                ("", Unknown),
                ("UNSIGNED BIG INT", Integer),
                ("boolean", Boolean),
            ],
        );
    }

    #[test]
    fn join_compatibility_requires_key_like_families() {
        check(
            |(a, b): &(&str, &str)| join_compatibility(a, b),
            &[
                (("int", "bigint"), Some(1.0)),
                (("integer", "numeric(10,2)"), Some(0.9)),
                (("uuid", "text"), Some(0.8)),
                (("int", "varchar(10)"), None),
                (("boolean", "boolean"), None),
                (("double", "double"), None),
                (("", "int"), Some(0.85)),
                (("interval", "interval"), Some(0.9)),
                (("interval", "point"), None),
            ],
        );
    }

    #[test]
    fn terms_drop_stopwords_and_stem() {
        check(
            |s: &&str| terms(s),
            &[(
                "Which customers placed the most orders per category?",
                vec![
                    "customer".to_string(),
                    "placed".into(),
                    "most".into(),
                    "order".into(),
                    "categori".into(),
                ],
            )],
        );
    }
}
