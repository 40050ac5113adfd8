"""The official OpenAI SDK's fine-tuning calls through tollgate (AC-3): a data-steward key
uploads a file and starts, lists and cancels a job; an app key is refused with the SDK's
PermissionDeniedError. Run by sdk.rs with TOLLGATE_URL, TOLLGATE_STEWARD_KEY, TOLLGATE_APP_KEY."""

import io
import os
import sys

import openai

URL = os.environ["TOLLGATE_URL"] + "/v1"
steward = openai.OpenAI(base_url=URL, api_key=os.environ["TOLLGATE_STEWARD_KEY"], max_retries=0)
app = openai.OpenAI(base_url=URL, api_key=os.environ["TOLLGATE_APP_KEY"], max_retries=0)

data = b'{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'
f = steward.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
assert f.id.startswith("file-") and f.bytes == len(data), f
assert steward.files.content(f.id).read() == data
assert any(x.id == f.id for x in steward.files.list())
job = steward.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=f.id)
assert job.status == "queued" and job.training_file == f.id, job
assert [j.id for j in steward.fine_tuning.jobs.list()] == [job.id]
assert steward.fine_tuning.jobs.list_events(job.id).data[0].message == "Job queued"
assert steward.fine_tuning.jobs.cancel(job.id).status == "cancelled"

try:
    app.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    sys.exit("an app key uploaded a training file")
except openai.PermissionDeniedError as e:
    assert "data-steward" in str(e), e
try:
    app.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=f.id)
    sys.exit("an app key started a fine-tuning job")
except openai.PermissionDeniedError:
    pass
print("datasets: ok")
