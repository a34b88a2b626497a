# Dataset preparation: official archives are fetched (or linked from a configured path) with
# checksums, then converted to the array format documented in repro.data.arrays.


wildcard_constraints:
    name=r"[a-z0-9]+(-lt\d+)?",


rule fetch_archive:
    output:
        "data/archives/{dataset}.archive",
    wildcard_constraints:
        dataset="cifar100|tinyimagenet|zurich",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params(wc.dataset),
    log:
        "logs/data/fetch_{dataset}.log",
    benchmark:
        "benchmarks/data/fetch_{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data fetch {wildcards.dataset} --out {output} --params {params.cfg:q} > {log} 2>&1"


rule prepare_digits:
    output:
        dataset_files("{name}"),
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=r"digits(-lt\d+)?",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params("digits"),
        imbalance=imbalance_flag,
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
        "repro-data prepare digits --out data/{wildcards.name} {params.imbalance}"
        " --params {params.cfg:q} > {log} 2>&1"


rule prepare_cifar100:
    input:
        archive="data/archives/cifar100.archive",
    output:
        dataset_files("{name}"),
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name=r"cifar100(-lt\d+)?",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params("cifar100"),
        imbalance=imbalance_flag,
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
        "repro-data prepare cifar100 --archive {input.archive} --out data/{wildcards.name}"
        " {params.imbalance} --params {params.cfg:q} > {log} 2>&1"


rule prepare_tinyimagenet:
    input:
        archive="data/archives/tinyimagenet.archive",
    output:
        dataset_files("tinyimagenet"),
        meta="data/tinyimagenet/meta.json",
    params:
        version=pkg_version("data"),
    log:
        "logs/data/prepare_tinyimagenet.log",
    benchmark:
        "benchmarks/data/prepare_tinyimagenet.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare tinyimagenet --archive {input.archive} --out data/tinyimagenet"
        " > {log} 2>&1"


rule prepare_zurich:
    input:
        archive="data/archives/zurich.archive",
    output:
        meta="data/zurich/meta.json",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params("zurich"),
    log:
        "logs/data/prepare_zurich.log",
    benchmark:
        "benchmarks/data/prepare_zurich.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare zurich --archive {input.archive} --out data/zurich"
        " --params {params.cfg:q} > {log} 2>&1"


rule prepare_photos:
    output:
        expand("data/photos/{photo}.png", photo=config["data"]["photos"]["names"]),
        meta="data/photos/meta.json",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params("photos"),
    log:
        "logs/data/prepare_photos.log",
    benchmark:
        "benchmarks/data/prepare_photos.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare photos --out data/photos --params {params.cfg:q} > {log} 2>&1"


rule index_imagenet:
    output:
        "data/imagenet/train.csv",
        "data/imagenet/val.csv",
        meta="data/imagenet/meta.json",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params("imagenet"),
    log:
        "logs/data/index_imagenet.log",
    benchmark:
        "benchmarks/data/index_imagenet.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "repro-data prepare imagenet --out data/imagenet --params {params.cfg:q} > {log} 2>&1"


# The fine-grained sets of R2KD: an index over the user's copy in its official layout
# (data.<name>.root; repro.data.fgvr), read like the ImageNet index.
rule index_fgvr:
    output:
        "data/{name}/train.csv",
        "data/{name}/val.csv",
        meta="data/{name}/meta.json",
    wildcard_constraints:
        name="cub200|mit67|stanford40|dogs",
    params:
        version=pkg_version("data"),
        cfg=lambda wc: data_params(wc.name),
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
