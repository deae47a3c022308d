\set c random(1, 100000)
\set s1 random(1, 1000)
\set s2 random(1, 1000)
SELECT public.bench_place(:c, :s1, :s2);
