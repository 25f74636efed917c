//! Deterministic synthetic warehouses for benchmarks and scale tests: thousands of tables across four
//! schemas, declared foreign keys between random tables, and extra naming-convention columns that only
//! inference can join. Same arguments, same snapshot, on every machine.

use crate::snapshot::{Column, ForeignKey, SchemaSnapshot, Table, TableId, TableKind};

const SCHEMAS: &[&str] = &["sales", "crm", "ops", "finance"];
const ENTITIES: &[&str] = &[
    "customer",
    "order",
    "product",
    "invoice",
    "payment",
    "shipment",
    "supplier",
    "warehouse",
    "employee",
    "department",
    "region",
    "store",
    "category",
    "account",
    "contract",
    "campaign",
    "ticket",
    "vendor",
    "asset",
    "device",
    "project",
    "task",
    "course",
    "student",
    "patient",
    "visit",
    "claim",
    "policy",
    "route",
    "vehicle",
    "flight",
    "booking",
    "hotel",
    "room",
    "review",
    "subscription",
    "plan",
    "event",
    "session",
    "address",
];
const STATUSES: &[&str] = &["active", "pending", "closed", "cancelled", "shipped", "refunded"];

/// SplitMix64: tiny, fast and good enough to spread synthetic foreign keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The name of synthetic table `i`: an entity word and a number (`customer_0040`), so that names are
/// unique, words repeat across tables (as in real schemas) and `<name>_id` columns name their table.
pub fn table_name(i: usize) -> String {
    format!("{}_{:04}", ENTITIES[i % ENTITIES.len()], i)
}

pub fn table_id(i: usize) -> TableId {
    TableId::new(SCHEMAS[i % SCHEMAS.len()], table_name(i))
}

/// A warehouse of `tables` tables with `foreign_keys` declared foreign keys and `undeclared` extra
/// `<table>_id` columns without a declared key (for inference to find).
pub fn warehouse(tables: usize, foreign_keys: usize, undeclared: usize, seed: u64) -> SchemaSnapshot {
    let mut rng = Rng(seed);
    let mut out: Vec<Table> = (0..tables)
        .map(|i| {
            let entity = ENTITIES[i % ENTITIES.len()];
            let mut status = Column::new("status", "varchar(20)");
            status.samples = (0..3)
                .map(|_| STATUSES[rng.below(STATUSES.len())].to_string())
                .collect();
            let mut table = Table::new(table_id(i), TableKind::Table)
                .with_column(Column {
                    nullable: false,
                    ..Column::new("id", "bigint")
                })
                .with_column(Column::new("name", "text"))
                .with_column(status)
                .with_column(Column::new("created_at", "timestamp"))
                .with_column(Column::new("amount", "decimal(12,2)"))
                .with_primary_key(["id"]);
            table.comment = Some(format!(
                "Synthetic {entity} records, batch {}",
                i / ENTITIES.len()
            ));
            table.row_estimate = Some(rng.next() % 1_000_000);
            table
        })
        .collect();
    if tables < 2 {
        return SchemaSnapshot::new(out, 0);
    }
    let add_reference = |rng: &mut Rng, out: &mut Vec<Table>, declared: bool| {
        let from = rng.below(tables);
        let mut to = rng.below(tables - 1);
        if to >= from {
            to += 1;
        }
        let base = format!("{}_id", table_name(to));
        let table = &mut out[from];
        let mut name = base.clone();
        let mut n = 2;
        while table.column(&name).is_some() {
            name = format!("{base}_{n}");
            n += 1;
        }
        table.columns.push(Column {
            ordinal: table.columns.len() as u32 + 1,
            ..Column::new(name.clone(), "bigint")
        });
        if declared {
            table.foreign_keys.push(ForeignKey {
                name: Some(format!("fk_{}_{}", table.id.name, table.foreign_keys.len())),
                columns: vec![name],
                references: table_id(to),
                referenced_columns: vec!["id".to_string()],
            });
        }
    };
    for _ in 0..foreign_keys {
        add_reference(&mut rng, &mut out, true);
    }
    for _ in 0..undeclared {
        add_reference(&mut rng, &mut out, false);
    }
    SchemaSnapshot::new(out, 1_700_000_000_000)
}
