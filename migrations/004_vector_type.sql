-- How a model's HNSW index holds its vectors: vector (float32) or halfvec (float16, half the index). The table
-- keeps float32 either way, so distances and the final order of an answer stay exact.
alter table models add column if not exists vector_type text not null default 'vector' check (vector_type in ('vector', 'halfvec'));
