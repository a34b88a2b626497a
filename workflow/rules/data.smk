# Dataset preparation: official archives are fetched (or linked from a configured path) with
# checksums, then converted to the array format documented in repro.data.arrays. Which
# datasets each rule prepares comes from the dataset registry (repro.data.registry: a dataset
# names its rule); a job gets its dataset's config section (a long-tailed `<name>-lt<F>`, its
# base's; the factor is in the name).
from repro.data import plan as dataplan


rule fetch_archive:
    output:
        "data/archives/{name}.archive",
    wildcard_constraints:
        name=dataplan.constraint("fetch_archive"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/fetch_{name}.log",
    benchmark:
        "benchmarks/data/fetch_{name}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data fetch {wildcards.name} --out {output} --params {params.cfg:q} > {log} 2>&1"


rule prepare_digits:
    output:
        dataplan.array_files("{name}"),
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("prepare_digits"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/prepare_{name}.log",
    benchmark:
        "benchmarks/data/prepare_{name}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"


rule prepare_cifar100:
    input:
        archive="data/archives/cifar100.archive",
    output:
        dataplan.array_files("{name}"),
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("prepare_cifar100"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/prepare_{name}.log",
    benchmark:
        "benchmarks/data/prepare_{name}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --archive {input.archive} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"


rule prepare_tinyimagenet:
    input:
        archive="data/archives/tinyimagenet.archive",
    output:
        dataplan.array_files("{name}"),
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("prepare_tinyimagenet"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/prepare_{name}.log",
    benchmark:
        "benchmarks/data/prepare_{name}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --archive {input.archive} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"


rule prepare_zurich:
    input:
        archive="data/archives/zurich.archive",
    output:
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("prepare_zurich"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/prepare_{name}.log",
    benchmark:
        "benchmarks/data/prepare_{name}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --archive {input.archive} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"


rule prepare_photos:
    output:
        expand("data/{{name}}/{photo}.png", photo=config["data"]["photos"]["names"]),
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("prepare_photos"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/prepare_{name}.log",
    benchmark:
        "benchmarks/data/prepare_{name}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"


rule index_imagenet:
    output:
        "data/{name}/train.csv",
        "data/{name}/val.csv",
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("index_imagenet"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/index_{name}.log",
    benchmark:
        "benchmarks/data/index_{name}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"


# The fine-grained sets of R2KD: an index over the user's copy in its official layout
# (data.<name>.root; repro.data.fgvr), read like the ImageNet index.
rule index_fgvr:
    output:
        "data/{name}/train.csv",
        "data/{name}/val.csv",
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=dataplan.constraint("index_fgvr"),
    params:
        version=pkg_version("data"),
        cfg=data_params,
    log:
        "logs/data/index_{name}.log",
    benchmark:
        "benchmarks/data/index_{name}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare {wildcards.name} --out data/{wildcards.name}"
        " --params {params.cfg:q} > {log} 2>&1"
